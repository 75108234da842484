/*
 * libFuzzer target for src/xml/parser.c (and the serializer behind it).
 *
 * The first input byte seeds how the rest is split into chunks. The input is
 * parsed four times: whole, split, split with tern_xml_parser_trim() after
 * every chunk (expat released and recreated wherever the stream allows), and
 * whole again on the same parser after tern_xml_parser_reset(). Every
 * callback is logged (stanzas serialized), and the four logs must be
 * identical: splitting the input, trimming or reusing a parser must never
 * change what is delivered. The error returned may differ between
 * whole and split input only in which error ends a stream that is broken
 * anyway, so it is not compared.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "xml/parser.h"
#include "xml/xml.h"

/* Small limits so that the fuzzer reaches them with short inputs. */
static const struct tern_xml_limits limits = {
    .max_stanza_size = 8192,
    .max_header_size = 1024,
    .max_depth = 12,
};

struct run {
    struct tern_buf log; /* every callback, as text */
};

static void log_tree(struct run *r, const char *tag, const struct tern_xml *el, const char *ns) {
    tern_buf_adds(&r->log, tag);
    /* Serialize into a buffer of its own with a ceiling, then log it; a
     * serialized stanza is bounded by the input, the ceiling is ample. */
    struct tern_buf out;
    tern_buf_init(&out, 1 << 20);
    if (tern_xml_serialize(el, ns, &out) != 0) {
        fprintf(stderr, "serialize hit the ceiling\n");
        abort();
    }
    if (out.len)
        tern_buf_add(&r->log, out.data, out.len);
    tern_buf_free(&out);
    tern_buf_adds(&r->log, "\n");
}

static void on_open(void *ud, const struct tern_xml *header, const char *content_ns) {
    struct run *r = ud;
    tern_buf_adds(&r->log, "open ");
    tern_buf_adds(&r->log, content_ns);
    log_tree(r, " ", header, "");
}

static void on_stanza(void *ud, struct tern_xml *stanza) {
    struct run *r = ud;
    log_tree(r, "stanza ", stanza, "jabber:client");
    /* Exercise the tree helpers too. */
    struct tern_xml *copy = tern_xml_copy(stanza);
    char *text = tern_xml_text(copy);
    free(text);
    tern_xml_unref(&copy);
    tern_xml_unref(&stanza);
}

static void on_close(void *ud) {
    struct run *r = ud;
    tern_buf_adds(&r->log, "close\n");
}

static const struct tern_xml_parser_cb cb = {on_open, on_stanza, on_close};

/* Feed data, whole (seed 0) or in chunks whose sizes come from seed; trim
 * after every chunk if asked. */
static void feed(struct tern_xml_parser *p, const uint8_t *data, size_t size, unsigned seed,
                 int trim) {
    enum tern_stream_error cond;
    if (seed == 0) {
        tern_xml_parser_feed(p, (const char *)data, size, &cond);
        return;
    }
    /* Chunk sizes mostly small, sometimes a few KiB, to cross the internal
     * piece size and the hold threshold at varying offsets. */
    uint32_t x = seed * 2654435761u + 1;
    size_t off = 0;
    while (off < size) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t n = (x & 7) == 0 ? 1 + (x >> 8) % 5000 : 1 + (x >> 8) % (seed % 16 + 1);
        if (n > size - off)
            n = size - off;
        /* Trimming: also end a chunk after every '>', where a stanza may
         * have ended and expat can go; the big chunks would skip past most
         * of those. */
        const uint8_t *gt = trim ? memchr(data + off, '>', n) : NULL;
        if (gt)
            n = (size_t)(gt - (data + off)) + 1;
        if (tern_xml_parser_feed(p, (const char *)data + off, n, &cond) != 0)
            return;
        int rc = trim ? tern_xml_parser_trim(p) : 0;
        if (rc != 0 && rc != TERN_E_BUSY)
            abort();
        off += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    unsigned seed = data[0];
    data++;
    size--;

    struct run whole, split, trimmed, again;
    tern_buf_init(&whole.log, 1 << 24);
    tern_buf_init(&split.log, 1 << 24);
    tern_buf_init(&trimmed.log, 1 << 24);
    tern_buf_init(&again.log, 1 << 24);

    struct tern_xml_parser *p = tern_xml_parser_new(&cb, &whole, "jabber:client", &limits);
    feed(p, data, size, 0, 0);
    tern_xml_parser_free(&p);

    p = tern_xml_parser_new(&cb, &split, "jabber:client", &limits);
    feed(p, data, size, seed ? seed : 1, 0);
    tern_xml_parser_free(&p);

    p = tern_xml_parser_new(&cb, &trimmed, "jabber:client", &limits);
    feed(p, data, size, seed ? seed : 1, 1);
    tern_xml_parser_free(&p);

    /* Reset a parser in whatever state the split input left it, then parse
     * the input whole again. */
    p = tern_xml_parser_new(&cb, &again, "jabber:client", &limits);
    feed(p, data, size, seed ? seed : 1, 1);
    tern_xml_parser_reset(p);
    tern_buf_reset(&again.log);
    feed(p, data, size, 0, 0);
    tern_xml_parser_free(&p);

    if (whole.log.len != split.log.len ||
        (whole.log.len && memcmp(whole.log.data, split.log.data, whole.log.len) != 0)) {
        fprintf(stderr, "split input changed the callbacks\nwhole:\n%s\nsplit:\n%s\n",
                whole.log.data ? whole.log.data : "", split.log.data ? split.log.data : "");
        abort();
    }
    if (whole.log.len != trimmed.log.len ||
        (whole.log.len && memcmp(whole.log.data, trimmed.log.data, whole.log.len) != 0)) {
        fprintf(stderr, "trimming changed the callbacks\nwhole:\n%s\ntrimmed:\n%s\n",
                whole.log.data ? whole.log.data : "", trimmed.log.data ? trimmed.log.data : "");
        abort();
    }
    if (whole.log.len != again.log.len ||
        (whole.log.len && memcmp(whole.log.data, again.log.data, whole.log.len) != 0)) {
        fprintf(stderr, "reset parser changed the callbacks\nfirst:\n%s\nafter reset:\n%s\n",
                whole.log.data ? whole.log.data : "", again.log.data ? again.log.data : "");
        abort();
    }
    tern_buf_free(&whole.log);
    tern_buf_free(&split.log);
    tern_buf_free(&trimmed.log);
    tern_buf_free(&again.log);
    return 0;
}
