/* Parsing a single stored element by wrapping it in a synthetic stream. */
#include "xml/parser.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "xml/xml.h"

struct one {
    struct tern_xml *el; /* the element, once complete */
    int count;           /* elements seen */
};

static void on_open(void *ud, const struct tern_xml *header, const char *content_ns) {
}

static void on_stanza(void *ud, struct tern_xml *el) {
    struct one *o = ud;
    if (o->count++ == 0)
        o->el = el;
    else
        tern_xml_unref(&el);
}

static void on_close(void *ud) {
}

int tern_xml_parse_one(const char *content_ns, const char *data, size_t len, size_t max_size,
                       int max_depth, struct tern_xml **out) {
    static const struct tern_xml_parser_cb cb = {on_open, on_stanza, on_close};
    struct tern_xml_limits limits = {max_size, 4096, max_depth};
    struct one o = {NULL, 0};
    *out = NULL;
    struct tern_xml_parser *p = tern_xml_parser_new(&cb, &o, content_ns, &limits);
    char header[512];
    int n = snprintf(header, sizeof header,
                     "<stream:stream xmlns='%s' xmlns:stream='" TERN_NS_STREAMS "'>", content_ns);
    enum tern_stream_error cond;
    int rc = TERN_E_INVAL;
    if (n > 0 && (size_t)n < sizeof header &&
        tern_xml_parser_feed(p, header, (size_t)n, &cond) == 0 &&
        tern_xml_parser_feed(p, data, len, &cond) == 0 && o.count == 1) {
        *out = o.el;
        o.el = NULL;
        rc = 0;
    }
    tern_xml_unref(&o.el);
    tern_xml_parser_free(&p);
    return rc;
}
