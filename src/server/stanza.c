#include "server/stanza.h"

#include <string.h>

#include "xml/xml.h"

static void swap_addresses(struct tern_xml *reply, const struct tern_xml *orig) {
    const char *to = tern_xml_attr(orig, "to");
    const char *from = tern_xml_attr(orig, "from");
    tern_xml_set_attr(reply, "to", from);
    tern_xml_set_attr(reply, "from", to);
}

struct tern_xml *tern_stanza_error_reply(const struct tern_xml *stanza,
                                         const struct tern_stanza_error *err) {
    struct tern_xml *reply = tern_xml_copy(stanza);
    swap_addresses(reply, stanza);
    tern_xml_set_attr(reply, "type", "error");
    struct tern_xml *e = tern_xml_add_el(reply, NULL, "error");
    tern_xml_set_attr(e, "type", tern_error_type_name(err->type));
    tern_xml_add_el(e, TERN_NS_STANZA_ERRORS, tern_stanza_cond_name(err->cond));
    if (err->text) {
        struct tern_xml *t = tern_xml_add_el(e, TERN_NS_STANZA_ERRORS, "text");
        tern_xml_set_attr(t, "xml:lang", "en");
        tern_xml_add_text(t, err->text, strlen(err->text));
    }
    return reply;
}

struct tern_xml *tern_stanza_result(const struct tern_xml *iq) {
    struct tern_xml *reply = tern_xml_new(iq->ns, "iq");
    tern_xml_set_attr(reply, "type", "result");
    tern_xml_set_attr(reply, "id", tern_xml_attr(iq, "id"));
    swap_addresses(reply, iq);
    return reply;
}

int tern_stanza_is_response(const struct tern_xml *stanza) {
    const char *type = tern_xml_attr(stanza, "type");
    if (!type)
        return 0;
    if (strcmp(type, "error") == 0)
        return 1;
    return strcmp(stanza->name, "iq") == 0 && strcmp(type, "result") == 0;
}
