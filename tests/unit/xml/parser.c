/* Tests for src/xml/parser.c: stream framing, stanza trees, split input,
 * RFC 6120 §11 restrictions, namespace errors, limits, stop and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "xml/parser.h"
#include "xml/xml.h"

#define HEADER                                                                                     \
    "<stream:stream to='example.com' xmlns='jabber:client' "                                       \
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>"

static const struct tern_xml_limits roomy = {1 << 20, 4096, 32};

/* Set for the "_trimmed" runs of the tests: every feed is followed by
 * tern_xml_parser_trim(), so expat is released between stanzas and recreated
 * by the next feed wherever the input allows it. What the parser reports
 * must not change. */
static int trim_after_feed;

static int feed(struct tern_xml_parser *p, const char *s, size_t n, enum tern_stream_error *cond) {
    int rc = tern_xml_parser_feed(p, s, n, cond);
    if (trim_after_feed) {
        int t = tern_xml_parser_trim(p);
        assert_true(t == 0 || t == TERN_E_BUSY);
    }
    return rc;
}

/* ---- a recorder of callbacks ----------------------------------------- */

struct rec {
    struct tern_buf log;        /* every callback, as text */
    int opens, stanzas, closes; /* counts */
    struct tern_xml *last;      /* last stanza, kept */
    struct tern_xml *header;    /* copy of the last header */
    char *content_ns;           /* content namespace of the last header */
    const char *stop_on;        /* stanza name that makes the callback stop */
    int reset_instead;          /* ... or reset */
    struct tern_xml_parser *p;  /* for stop/reset */
    size_t fed;                 /* bytes fed so far, maintained by feed_by */
    size_t fired_at[16];        /* fed when each stanza arrived */
};

static void log_el(struct rec *r, const char *what, const struct tern_xml *el, const char *ns) {
    assert_int_equal(tern_buf_adds(&r->log, what), 0);
    assert_int_equal(tern_xml_serialize(el, ns, &r->log), 0);
    assert_int_equal(tern_buf_adds(&r->log, "\n"), 0);
}

static void on_open(void *ud, const struct tern_xml *header, const char *content_ns) {
    struct rec *r = ud;
    r->opens++;
    assert_null(header->parent);
    assert_string_equal(header->ns, "http://etherx.jabber.org/streams");
    assert_string_equal(header->name, "stream");
    tern_buf_printf(&r->log, "open %s ", content_ns);
    log_el(r, "", header, "");
    tern_xml_unref(&r->header);
    r->header = tern_xml_copy(header);
    free(r->content_ns);
    r->content_ns = strdup(content_ns);
}

static void on_stanza(void *ud, struct tern_xml *st) {
    struct rec *r = ud;
    assert_int_equal(st->refs, 1);
    assert_null(st->parent);
    if (r->stanzas < 16)
        r->fired_at[r->stanzas] = r->fed;
    r->stanzas++;
    log_el(r, "stanza ", st, "jabber:client");
    tern_xml_unref(&r->last);
    r->last = st;
    if (r->stop_on && strcmp(st->name, r->stop_on) == 0) {
        if (r->reset_instead)
            tern_xml_parser_reset(r->p);
        else
            tern_xml_parser_stop(r->p);
    }
}

static void on_close(void *ud) {
    struct rec *r = ud;
    r->closes++;
    tern_buf_adds(&r->log, "close\n");
}

static const struct tern_xml_parser_cb rec_cb = {on_open, on_stanza, on_close};

static struct tern_xml_parser *rec_new(struct rec *r, const struct tern_xml_limits *lim) {
    memset(r, 0, sizeof(*r));
    tern_buf_init(&r->log, 1 << 24);
    r->p = tern_xml_parser_new(&rec_cb, r, "jabber:client", lim);
    return r->p;
}

static void rec_free(struct rec *r) {
    tern_xml_parser_free(&r->p);
    tern_buf_free(&r->log);
    tern_xml_unref(&r->last);
    tern_xml_unref(&r->header);
    free(r->content_ns);
}

/* Feed in chunks of the given size (0 = all at once); stop at the first error. */
static int feed_by(struct rec *r, const char *s, size_t len, size_t chunk,
                   enum tern_stream_error *cond) {
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        r->fed = off + n;
        int rc = feed(r->p, s + off, n, cond);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- a normal stream ------------------------------------------------- */

static const char client_stream[] =
    "<?xml version='1.0'?>\n" HEADER "\n"
    "<message to='juliet@example.com/balcony' type='chat' id='m1' xml:lang='en'>"
    "<body>Wherefore art thou, Romeo?</body></message>\n"
    "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<resource>balcony</resource></bind></iq> \t\r\n"
    "<presence><show>away</show><status>Hi &amp; bye</status></presence>"
    "</stream:stream>";

static void test_client_stream(void **state) {
    struct rec r;
    struct tern_xml_parser *p = rec_new(&r, &roomy);
    enum tern_stream_error cond = TERN_SE_NONE;
    assert_int_equal(feed(p, client_stream, strlen(client_stream), &cond), 0);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 3);
    assert_int_equal(r.closes, 1);
    assert_string_equal(r.content_ns, "jabber:client");
    /* Header attributes: to, version, xml:lang; no xmlns declarations. */
    assert_int_equal(r.header->nattrs, 3);
    assert_string_equal(tern_xml_attr(r.header, "to"), "example.com");
    assert_string_equal(tern_xml_attr(r.header, "version"), "1.0");
    assert_string_equal(tern_xml_attr(r.header, "xml:lang"), "en");
    assert_null(tern_xml_attr(r.header, "xmlns"));
    assert_null(r.header->children);

    assert_string_equal(r.log.data,
                        "open jabber:client <stream xmlns='http://etherx.jabber.org/streams' "
                        "to='example.com' version='1.0' xml:lang='en'/>\n"
                        "stanza <message to='juliet@example.com/balcony' type='chat' id='m1' "
                        "xml:lang='en'><body>Wherefore art thou, Romeo?</body></message>\n"
                        "stanza <iq type='set' id='b1'><bind "
                        "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource>"
                        "</bind></iq>\n"
                        "stanza <presence><show>away</show><status>Hi &amp; bye</status>"
                        "</presence>\n"
                        "close\n");

    /* The last stanza's tree, checked node by node. */
    struct tern_xml *pr = r.last;
    assert_string_equal(pr->ns, "jabber:client");
    assert_string_equal(pr->name, "presence");
    assert_int_equal(pr->nattrs, 0);
    struct tern_xml *show = tern_xml_child(pr, "jabber:client", "show");
    assert_non_null(show);
    assert_ptr_equal(show->parent, pr);
    struct tern_xml *status = tern_xml_next(show, NULL, "status");
    assert_non_null(status);
    /* "Hi ", "&", " bye" arrive separately and are merged into one node. */
    assert_non_null(status->children);
    assert_ptr_equal(status->children, status->last_child);
    assert_string_equal(status->children->text, "Hi & bye");
    rec_free(&r);
}

/* The log of the whole input fed at once. */
static char *log_whole(const char *in, size_t len, const struct tern_xml_limits *lim, int *rc,
                       enum tern_stream_error *cond) {
    struct rec r;
    rec_new(&r, lim);
    *cond = TERN_SE_NONE;
    *rc = feed_by(&r, in, len, 0, cond);
    char *log = tern_buf_take(&r.log);
    rec_free(&r);
    return log ? log : strdup("");
}

static void assert_split_invariant(const char *in, size_t len, const struct tern_xml_limits *lim) {
    int rc_whole;
    enum tern_stream_error cond_whole;
    char *whole = log_whole(in, len, lim, &rc_whole, &cond_whole);

    /* Two pieces, split at every byte boundary. */
    for (size_t k = 0; k <= len; k++) {
        struct rec r;
        rec_new(&r, lim);
        enum tern_stream_error cond = TERN_SE_NONE;
        int rc = feed(r.p, in, k, &cond);
        if (rc == 0)
            rc = feed(r.p, in + k, len - k, &cond);
        assert_int_equal(rc, rc_whole);
        assert_int_equal(cond, cond_whole);
        if (strcmp(r.log.data ? r.log.data : "", whole) != 0)
            fail_msg("split at %zu differs:\n%s\nvs whole:\n%s", k, r.log.data, whole);
        rec_free(&r);
    }
    /* Fixed chunk sizes, including one byte at a time and sizes around 4 KiB. */
    static const size_t chunks[] = {1, 2, 3, 7, 64, 1000, 4095, 4096, 4097};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        struct rec r;
        rec_new(&r, lim);
        enum tern_stream_error cond = TERN_SE_NONE;
        int rc = feed_by(&r, in, len, chunks[i], &cond);
        assert_int_equal(rc, rc_whole);
        assert_int_equal(cond, cond_whole);
        assert_string_equal(r.log.data ? r.log.data : "", whole);
        rec_free(&r);
    }
    free(whole);
}

static void test_split_every_byte(void **state) {
    assert_split_invariant(client_stream, strlen(client_stream), &roomy);
}

/* Long tokens (which the parser may hold back from expat) and long text. */
static char *big_stream(size_t *len, size_t stanza_end[3]) {
    struct tern_buf b;
    tern_buf_init(&b, 1 << 20);
    tern_buf_adds(&b, HEADER);
    tern_buf_adds(&b, "<message id='");
    for (int i = 0; i < 1500; i++)
        tern_buf_adds(&b, i % 10 == 0 ? ">" : (i % 7 == 0 ? "&amp;" : "a"));
    tern_buf_adds(&b, "' type=\"x'>\"\n   ><body>");
    for (int i = 0; i < 2000; i++)
        tern_buf_adds(&b, i % 50 == 0 ? "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" : "t");
    tern_buf_adds(&b, "</body></message>");
    stanza_end[0] = b.len;
    tern_buf_adds(&b, "<iq id='2'><query xmlns='urn:q' ");
    for (int i = 0; i < 300; i++)
        tern_buf_printf(&b, "a%d='%d' ", i, i);
    tern_buf_adds(&b, "/></iq>");
    stanza_end[1] = b.len;
    tern_buf_adds(&b, "<presence><![CDATA[");
    for (int i = 0; i < 1500; i++)
        tern_buf_adds(&b, "]>");
    tern_buf_adds(&b, "]]></presence>");
    stanza_end[2] = b.len;
    *len = b.len;
    return tern_buf_take(&b);
}

static void test_split_big_tokens(void **state) {
    size_t len, ends[3];
    char *in = big_stream(&len, ends);
    assert_split_invariant(in, len, &roomy);

    /* A stanza is delivered as soon as its last byte arrives, however the
     * input was split: nothing complete is held back. */
    static const size_t chunks[] = {1, 5, 100};
    for (size_t c = 0; c < 3; c++) {
        struct rec r;
        rec_new(&r, &roomy);
        enum tern_stream_error cond;
        assert_int_equal(feed_by(&r, in, len, chunks[c], &cond), 0);
        assert_int_equal(r.stanzas, 3);
        for (int i = 0; i < 3; i++) {
            size_t want = (ends[i] + chunks[c] - 1) / chunks[c] * chunks[c];
            assert_int_equal(r.fired_at[i], want < len ? want : len);
        }
        rec_free(&r);
    }
    free(in);
}

static void test_utf8_split(void **state) {
    static const char in[] =
        HEADER "<message><body>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!</body></message>";
    size_t len = strlen(in);
    size_t body = strstr(in, "<body>") - in + 6;
    /* Split inside each multibyte character. */
    for (size_t k = body; k < body + 10; k++) {
        struct rec r;
        rec_new(&r, &roomy);
        enum tern_stream_error cond;
        assert_int_equal(feed(r.p, in, k, &cond), 0);
        assert_int_equal(feed(r.p, in + k, len - k, &cond), 0);
        assert_int_equal(r.stanzas, 1);
        char *t = tern_xml_text(tern_xml_first_el(r.last));
        assert_string_equal(t, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!");
        free(t);
        rec_free(&r);
    }
    assert_split_invariant(in, len, &roomy);
}

/* ---- errors ---------------------------------------------------------- */

/* Feed whole and byte by byte: same error both ways, sticky afterwards, and
 * the log (callbacks before the error) the same. Returns the stanza count. */
static int expect_error_lim(const char *in, enum tern_stream_error want,
                            const struct tern_xml_limits *lim) {
    size_t len = strlen(in);
    int stanzas = -1;
    char *first_log = NULL;
    static const size_t chunks[] = {0, 1, 3};
    for (size_t i = 0; i < 3; i++) {
        struct rec r;
        rec_new(&r, lim);
        enum tern_stream_error cond = TERN_SE_NONE;
        int rc = feed_by(&r, in, len, chunks[i], &cond);
        if (rc >= 0 || cond != want)
            fail_msg("input %s: chunk %zu: rc %d cond %s, want %s", in, chunks[i], rc,
                     tern_stream_error_name(cond), tern_stream_error_name(want));
        assert_int_equal(rc, want == TERN_SE_POLICY_VIOLATION ? TERN_E_LIMIT : TERN_E_INVAL);
        /* Sticky. */
        enum tern_stream_error again = TERN_SE_NONE;
        assert_int_equal(feed(r.p, "<presence/>", 11, &again), rc);
        assert_int_equal(again, want);
        if (!first_log) {
            stanzas = r.stanzas;
            first_log = strdup(r.log.data ? r.log.data : "");
        } else {
            assert_int_equal(r.stanzas, stanzas);
            assert_string_equal(r.log.data ? r.log.data : "", first_log);
        }
        rec_free(&r);
    }
    free(first_log);
    return stanzas;
}

static int expect_error(const char *in, enum tern_stream_error want) {
    return expect_error_lim(in, want, &roomy);
}

static void test_restricted_xml(void **state) {
    expect_error("<!DOCTYPE stream>" HEADER, TERN_SE_RESTRICTED_XML);
    expect_error("<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM 'http://x/y.dtd'>" HEADER,
                 TERN_SE_RESTRICTED_XML);
    expect_error("<!-- hello -->" HEADER, TERN_SE_RESTRICTED_XML);
    expect_error("<?xml version='1.0'?><!-- hello -->" HEADER, TERN_SE_RESTRICTED_XML);
    expect_error(HEADER "<!-- between -->", TERN_SE_RESTRICTED_XML);
    /* Inside a stanza: the stanza before it arrives, the failing one does not. */
    assert_int_equal(expect_error(HEADER "<presence/><message><body>x<!-- c -->y</body></message>",
                                  TERN_SE_RESTRICTED_XML),
                     1);
    expect_error("<?foo bar?>" HEADER, TERN_SE_RESTRICTED_XML);
    assert_int_equal(
        expect_error(HEADER "<presence/><iq><?php echo 1; ?></iq>", TERN_SE_RESTRICTED_XML), 1);
    expect_error("<!DOCTYPE s [<!ENTITY x 'y'>]>" HEADER, TERN_SE_RESTRICTED_XML);
    expect_error("<!DOCTYPE s [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]><s>&lol2;</s>",
                 TERN_SE_RESTRICTED_XML);
    /* Only the predefined entities may be referenced. */
    expect_error(HEADER "<message><body>&nbsp;</body></message>", TERN_SE_RESTRICTED_XML);
}

static void test_xml_declaration(void **state) {
    static const char *ok[] = {
        "<?xml version='1.0'?>" HEADER "<presence/>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" HEADER "<presence/>",
        "<?xml version='1.0' encoding='utf-8' standalone='yes'?>" HEADER "<presence/>",
        "\n  " HEADER "<presence/>",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct rec r;
        rec_new(&r, &roomy);
        enum tern_stream_error cond = TERN_SE_NONE;
        assert_int_equal(feed_by(&r, ok[i], strlen(ok[i]), 0, &cond), 0);
        assert_int_equal(r.opens, 1);
        assert_int_equal(r.stanzas, 1);
        rec_free(&r);
    }
    expect_error("<?xml version='1.0' encoding='ISO-8859-1'?>" HEADER,
                 TERN_SE_UNSUPPORTED_ENCODING);
    expect_error("<?xml version='1.0' encoding='UTF-16'?>" HEADER, TERN_SE_UNSUPPORTED_ENCODING);
    /* A declaration anywhere else is not XML. */
    expect_error(HEADER "<?xml version='1.0'?>", TERN_SE_NOT_WELL_FORMED);
    /* Input is UTF-8 whatever it claims; UTF-16, with or without a byte order
     * mark, is refused before expat can switch to it. */
    expect_error("\xff\xfe<", TERN_SE_UNSUPPORTED_ENCODING);
    expect_error("\xfe\xff", TERN_SE_UNSUPPORTED_ENCODING);
    static const char utf16[] = "<\0s\0t\0r\0e\0a\0m\0";
    for (size_t chunk = 0; chunk < 2; chunk++) {
        struct rec r;
        rec_new(&r, &roomy);
        enum tern_stream_error cond;
        assert_int_equal(feed_by(&r, utf16, sizeof(utf16) - 1, chunk, &cond), TERN_E_INVAL);
        assert_int_equal(cond, TERN_SE_UNSUPPORTED_ENCODING);
        rec_free(&r);
    }
    /* A UTF-8 byte order mark is fine. */
    struct rec r;
    rec_new(&r, &roomy);
    enum tern_stream_error cond;
    static const char bom[] = "\xef\xbb\xbf" HEADER "<presence/>";
    assert_int_equal(feed_by(&r, bom, strlen(bom), 1, &cond), 0);
    assert_int_equal(r.stanzas, 1);
    rec_free(&r);
}

static void test_namespace_errors(void **state) {
    /* Wrong stream namespace. */
    expect_error("<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>",
                 TERN_SE_INVALID_NAMESPACE);
    expect_error("<stream xmlns='jabber:client'>", TERN_SE_INVALID_NAMESPACE);
    expect_error("<html>", TERN_SE_INVALID_NAMESPACE);
    /* Right namespace, wrong element. */
    expect_error("<stream:features xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams'>",
                 TERN_SE_BAD_FORMAT);
    /* Wrong or missing content namespace. */
    expect_error("<stream:stream xmlns='jabber:server' "
                 "xmlns:stream='http://etherx.jabber.org/streams'>",
                 TERN_SE_INVALID_NAMESPACE);
    expect_error("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
                 TERN_SE_INVALID_NAMESPACE);
    expect_error("<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns=''>",
                 TERN_SE_INVALID_NAMESPACE);
    /* Undeclared prefixes, on the header and in a stanza. */
    expect_error("<stream:stream xmlns='jabber:client'>", TERN_SE_BAD_NAMESPACE_PREFIX);
    assert_int_equal(expect_error(HEADER "<presence/><foo:bar/>", TERN_SE_BAD_NAMESPACE_PREFIX), 1);
    expect_error(HEADER "<message foo:type='x'/>", TERN_SE_BAD_NAMESPACE_PREFIX);
    expect_error(HEADER "<message xmlns:p='urn:p'><p:x/></message><p:y/>",
                 TERN_SE_BAD_NAMESPACE_PREFIX);
    expect_error(HEADER "<message xmlns:xml='urn:not-xml'/>", TERN_SE_BAD_NAMESPACE_PREFIX);
    expect_error(HEADER "<message><xml:foo/></message>", TERN_SE_BAD_NAMESPACE_PREFIX);

    /* Another prefix for the streams namespace and a prefixed content
     * namespace are fine. */
    struct rec r;
    rec_new(&r, &roomy);
    static const char alt[] = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
                              "xmlns='jabber:client'><c:message xmlns:c='jabber:client'/>";
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, alt, strlen(alt), 0, &cond), 0);
    assert_int_equal(r.stanzas, 1);
    assert_string_equal(r.last->ns, "jabber:client");
    assert_string_equal(r.last->name, "message");
    rec_free(&r);
}

static void test_not_well_formed(void **state) {
    expect_error("hello world", TERN_SE_NOT_WELL_FORMED);
    expect_error("\x01\x02\x03", TERN_SE_NOT_WELL_FORMED);
    expect_error("GET / HTTP/1.1\r\n", TERN_SE_NOT_WELL_FORMED);
    assert_int_equal(expect_error(HEADER "<presence/><message></iq>", TERN_SE_NOT_WELL_FORMED), 1);
    expect_error(HEADER "<message a='1' a='2'/>", TERN_SE_NOT_WELL_FORMED);
    expect_error(HEADER "<message><body>\x01</body></message>", TERN_SE_NOT_WELL_FORMED);
    expect_error(HEADER "<message><body>&#1;</body></message>", TERN_SE_NOT_WELL_FORMED);
    expect_error(HEADER "<message><body>\xc3\x28</body></message>", TERN_SE_NOT_WELL_FORMED);
    expect_error(HEADER "<message><body>\xed\xa0\x80</body></message>", TERN_SE_NOT_WELL_FORMED);
    expect_error(HEADER "<message to=juliet/>", TERN_SE_NOT_WELL_FORMED);
    expect_error(HEADER "</stream:stream><presence/>", TERN_SE_NOT_WELL_FORMED);
    /* Text directly inside the stream is not a stanza. */
    expect_error(HEADER "<presence/>hello", TERN_SE_BAD_FORMAT);
    expect_error(HEADER "&amp;", TERN_SE_BAD_FORMAT);
}

static void test_incomplete_is_not_error(void **state) {
    /* "<" alone is just the start of something. */
    struct rec r;
    rec_new(&r, &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, "<", 1, 0, &cond), 0);
    assert_int_equal(feed_by(&r, HEADER + 1, strlen(HEADER) - 1, 0, &cond), 0);
    assert_int_equal(r.opens, 1);
    rec_free(&r);
}

/* ---- limits ---------------------------------------------------------- */

/* Bytes fed until the first error, feeding in chunks of `chunk`. */
static size_t bytes_until_error(const struct tern_xml_limits *lim, const char *prefix,
                                const char *filler, size_t chunk, size_t max_total,
                                enum tern_stream_error *cond, int *stanzas) {
    struct rec r;
    rec_new(&r, lim);
    size_t total = 0;
    int rc = 0;
    *cond = TERN_SE_NONE;
    if (prefix) {
        /* Trimmed: byte by byte, so that expat is also recreated in the
         * middle of the prefix (right after the header, say). */
        size_t plen = strlen(prefix), step = trim_after_feed ? 1 : plen;
        for (size_t off = 0; rc == 0 && off < plen; off += step)
            rc = feed(r.p, prefix + off, step, cond);
        total += plen;
    }
    /* The filler repeats across chunk boundaries as one continuous stream. */
    char *buf = malloc(chunk);
    size_t flen = strlen(filler);
    size_t pos = 0;
    while (rc == 0 && total < max_total) {
        for (size_t i = 0; i < chunk; i++)
            buf[i] = filler[pos++ % flen];
        rc = feed(r.p, buf, chunk, cond);
        total += chunk;
    }
    free(buf);
    *stanzas = r.stanzas;
    rec_free(&r);
    return rc ? total : 0;
}

static void test_stanza_size(void **state) {
    /* A stanza of exactly the limit passes; one byte more does not. */
    static const char stanza[] = "<message to='a@b'><body>0123456789</body></message>";
    size_t slen = strlen(stanza);
    struct tern_xml_limits lim = {slen, 4096, 32};
    char in[512];
    snprintf(in, sizeof(in), HEADER "%s %s", stanza, stanza);
    for (size_t chunk = 0; chunk < 3; chunk++) {
        struct rec r;
        rec_new(&r, &lim);
        enum tern_stream_error cond;
        assert_int_equal(feed_by(&r, in, strlen(in), chunk, &cond), 0);
        assert_int_equal(r.stanzas, 2);
        rec_free(&r);
    }
    lim.max_stanza_size = slen - 1;
    assert_int_equal(expect_error_lim(in, TERN_SE_POLICY_VIOLATION, &lim), 0);

    /* The limit is per stanza, not cumulative. */
    struct tern_buf many;
    tern_buf_init(&many, 1 << 20);
    tern_buf_adds(&many, HEADER);
    for (int i = 0; i < 1000; i++)
        tern_buf_adds(&many, stanza);
    lim.max_stanza_size = slen;
    struct rec r;
    rec_new(&r, &lim);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, many.data, many.len, 0, &cond), 0);
    assert_int_equal(r.stanzas, 1000);
    rec_free(&r);
    tern_buf_free(&many);

    /* Raising the limit later (after authentication). */
    lim.max_stanza_size = 20;
    rec_new(&r, &lim);
    assert_int_equal(feed_by(&r, HEADER, strlen(HEADER), 0, &cond), 0);
    lim.max_stanza_size = 1000;
    tern_xml_parser_set_limits(r.p, &lim);
    assert_int_equal(feed_by(&r, stanza, slen, 0, &cond), 0);
    assert_int_equal(r.stanzas, 1);
    rec_free(&r);
}

static void test_huge_attribute(void **state) {
    const size_t limit = 10000;
    struct tern_xml_limits lim = {limit, 4096, 32};
    enum tern_stream_error cond;
    int stanzas;
    /* One start tag with a megabyte attribute, in one feed. */
    size_t big = 1 << 20;
    char *in = malloc(big + 200);
    int n = snprintf(in, big + 200, HEADER "<presence/><message id='");
    memset(in + n, 'x', big);
    strcpy(in + n + big, "'/>");
    struct rec r;
    rec_new(&r, &lim);
    assert_int_equal(feed(r.p, in, strlen(in), &cond), TERN_E_LIMIT);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_int_equal(r.stanzas, 1);
    rec_free(&r);
    free(in);

    /* The same in small chunks: the error comes within a piece of the limit. */
    static const size_t chunks[] = {1, 100, 1000, 5000};
    for (size_t i = 0; i < 4; i++) {
        size_t total = bytes_until_error(&lim, HEADER "<message id='", "x>", chunks[i], 1 << 22,
                                         &cond, &stanzas);
        assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
        assert_true(total > limit);
        assert_true(total <= strlen(HEADER) + limit + 4096 + chunks[i]);
        assert_int_equal(stanzas, 0);
    }
    /* A start tag that never ends, between stanzas, held to the stanza limit. */
    size_t total = bytes_until_error(&lim, HEADER "<message", " ", 7, 1 << 22, &cond, &stanzas);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_true(total <= strlen(HEADER) + limit + 4096 + 7);
    /* A reference that never ends. */
    total = bytes_until_error(&lim, HEADER "<message>&", "a", 3, 1 << 22, &cond, &stanzas);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_true(total <= strlen(HEADER) + limit + 4096 + 3);
}

static void test_huge_text(void **state) {
    const size_t limit = 20000;
    struct tern_xml_limits lim = {limit, 4096, 32};
    enum tern_stream_error cond;
    int stanzas;
    static const size_t chunks[] = {1, 37, 4096, 10000};
    for (size_t i = 0; i < 4; i++) {
        size_t total =
            bytes_until_error(&lim, HEADER "<presence/><message><body>", "text \xc3\xa9 &amp; ",
                              chunks[i], 1 << 22, &cond, &stanzas);
        assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
        assert_true(total > limit);
        assert_true(total <= strlen(HEADER) + strlen("<presence/>") + limit + 4096 + chunks[i]);
        assert_int_equal(stanzas, 1);
    }
    /* Many small children add up the same way. */
    size_t total = bytes_until_error(&lim, HEADER "<iq>", "<a/>", 64, 1 << 22, &cond, &stanzas);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_true(total <= strlen(HEADER) + limit + 4096 + 64);
    /* Empty elements under a long namespace: each would keep its own copy of
     * the URI, so the tree's memory budget stops them long before the size
     * limit does. */
    char prefix[2048];
    snprintf(prefix, sizeof(prefix), HEADER "<iq xmlns='urn:%01000d'>", 0);
    total = bytes_until_error(&lim, prefix, "<b/>", 4, 1 << 22, &cond, &stanzas);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_true(total < strlen(prefix) + 1000);
    /* Endless whitespace between stanzas is fine (it is a keepalive). */
    total = bytes_until_error(&lim, HEADER, " \n", 4000, 1 << 20, &cond, &stanzas);
    assert_int_equal(total, 0);
}

static void test_depth(void **state) {
    struct tern_xml_limits lim = {1 << 20, 4096, 4};
    /* The stanza is depth 1. */
    static const char ok[] = HEADER "<iq><a><b><c/></b></a></iq>";
    struct rec r;
    rec_new(&r, &lim);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, ok, strlen(ok), 0, &cond), 0);
    assert_int_equal(r.stanzas, 1);
    rec_free(&r);
    assert_int_equal(expect_error_lim(HEADER "<presence/><iq><a><b><c><d/></c></b></a></iq>",
                                      TERN_SE_POLICY_VIOLATION, &lim),
                     1);
    /* Deep nesting without end tags stops at the limit, not at the size. */
    int stanzas;
    size_t total = bytes_until_error(&lim, HEADER, "<a>", 3, 1 << 20, &cond, &stanzas);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_int_equal(total, strlen(HEADER) + 15);
}

static void test_header_size(void **state) {
    struct tern_xml_limits lim = {1 << 20, 300, 32};
    /* HEADER fits. */
    struct rec r;
    rec_new(&r, &lim);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, HEADER, strlen(HEADER), 1, &cond), 0);
    assert_int_equal(r.opens, 1);
    rec_free(&r);

    char in[1024];
    snprintf(in, sizeof(in),
             "<stream:stream to='%0400d' xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams'>",
             7);
    assert_int_equal(expect_error_lim(in, TERN_SE_POLICY_VIOLATION, &lim), 0);
    /* The XML declaration counts too. */
    lim.max_header_size = strlen(HEADER) + 10;
    expect_error_lim("<?xml version='1.0'?>" HEADER, TERN_SE_POLICY_VIOLATION, &lim);
    /* Endless leading whitespace, or a header that never ends. */
    int stanzas;
    size_t total = bytes_until_error(&lim, NULL, " ", 50, 1 << 20, &cond, &stanzas);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_true(total <= lim.max_header_size + 50);
    total = bytes_until_error(&lim, "<stream:stream to='", "x", 1, 1 << 20, &cond, &stanzas);
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_true(total <= lim.max_header_size + 1);
}

/* Long tokens trickled a byte at a time cost linear time, not quadratic. */
static void test_trickled_token(void **state) {
    const size_t big = 200000;
    struct tern_xml_limits lim = {1 << 20, 4096, 32};
    struct rec r;
    rec_new(&r, &lim);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, HEADER, strlen(HEADER), 0, &cond), 0);
    clock_t start = clock();
    assert_int_equal(feed(r.p, "<message id='", 13, &cond), 0);
    for (size_t i = 0; i < big; i++)
        assert_int_equal(feed(r.p, i % 2 ? ">" : "x", 1, &cond), 0);
    assert_int_equal(feed(r.p, "'/", 2, &cond), 0);
    assert_int_equal(r.stanzas, 0);
    assert_int_equal(feed(r.p, ">", 1, &cond), 0);
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(strlen(tern_xml_attr(r.last, "id")), big);
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    /* Rescanning the token per byte would be ~2e10 byte steps. */
    if (secs > 10)
        fail_msg("trickled token took %.1f s", secs);
    rec_free(&r);
}

/* ---- stop, reset, close ---------------------------------------------- */

static void test_stop_and_reset(void **state) {
    struct rec r;
    struct tern_xml_parser *p = rec_new(&r, &roomy);
    r.stop_on = "starttls";
    static const char first[] = HEADER "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                       "<presence/>";
    enum tern_stream_error cond = TERN_SE_NONE;
    assert_int_equal(feed(p, first, strlen(first), &cond), 0);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 1);
    assert_string_equal(r.last->name, "starttls");
    assert_string_equal(r.last->ns, "urn:ietf:params:xml:ns:xmpp-tls");
    /* Stopped and not reset: refused. */
    assert_int_equal(feed(p, "<presence/>", 11, &cond), TERN_E_CLOSED);
    assert_int_equal(r.stanzas, 1);

    tern_xml_parser_reset(p);
    static const char second[] = "<?xml version='1.0'?>" HEADER "<presence/></stream:stream>";
    for (size_t i = 0; second[i]; i++)
        assert_int_equal(feed(p, second + i, 1, &cond), 0);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 2);
    assert_string_equal(r.last->name, "presence");
    assert_int_equal(r.closes, 1);

    /* Reset after an error clears it. */
    assert_int_equal(feed(p, "junk", 4, &cond), TERN_E_INVAL);
    tern_xml_parser_reset(p);
    assert_int_equal(feed(p, HEADER "<presence/>", strlen(HEADER) + 11, &cond), 0);
    assert_int_equal(r.opens, 3);
    assert_int_equal(r.stanzas, 3);

    /* Reset mid-stanza and mid-token forgets the partial input. */
    assert_int_equal(feed(p, "<message><body>abc", 18, &cond), 0);
    tern_xml_parser_reset(p);
    assert_int_equal(feed(p, HEADER "<iq/>", strlen(HEADER) + 5, &cond), 0);
    assert_int_equal(r.stanzas, 4);
    assert_string_equal(r.last->name, "iq");
    rec_free(&r);
}

static void test_reset_from_callback(void **state) {
    struct rec r;
    struct tern_xml_parser *p = rec_new(&r, &roomy);
    r.stop_on = "success";
    r.reset_instead = 1;
    static const char in[] = HEADER "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
                                    "<presence/>";
    enum tern_stream_error cond;
    assert_int_equal(feed(p, in, strlen(in), &cond), 0);
    assert_int_equal(r.stanzas, 1);
    /* Already reset: a new stream header is expected. */
    assert_int_equal(feed(p, HEADER "<presence/>", strlen(HEADER) + 11, &cond), 0);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 2);
    rec_free(&r);
}

static void test_stop_outside_callback(void **state) {
    /* stop() between feeds: the next feed is refused until reset. */
    struct rec r;
    struct tern_xml_parser *p = rec_new(&r, &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed(p, HEADER, strlen(HEADER), &cond), 0);
    tern_xml_parser_stop(p);
    assert_int_equal(feed(p, "<presence/>", 11, &cond), TERN_E_CLOSED);
    assert_int_equal(r.stanzas, 0);
    rec_free(&r);
}

static void feed_from_callback(void *ud, struct tern_xml *st) {
    struct rec *r = ud;
    enum tern_stream_error cond = TERN_SE_NONE;
    r->stanzas++;
    assert_int_equal(tern_xml_parser_feed(r->p, "<presence/>", 11, &cond), TERN_E_BUSY);
    assert_int_equal(cond, TERN_SE_INTERNAL_SERVER_ERROR);
    tern_xml_unref(&st);
}

static void test_feed_from_callback(void **state) {
    struct rec r;
    rec_new(&r, &roomy);
    tern_xml_parser_free(&r.p);
    struct tern_xml_parser_cb cb = {NULL, feed_from_callback, NULL};
    r.p = tern_xml_parser_new(&cb, &r, "jabber:client", &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, HEADER "<iq/><iq/>", strlen(HEADER) + 10, 0, &cond), 0);
    assert_int_equal(r.stanzas, 2);
    rec_free(&r);
}

static void test_close(void **state) {
    static const char in[] = HEADER "<presence/>\n</stream:stream>\n \t";
    struct rec r;
    rec_new(&r, &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, in, strlen(in), 1, &cond), 0);
    assert_int_equal(r.closes, 1);
    assert_int_equal(r.stanzas, 1);
    rec_free(&r);
    /* A stream closed with another prefix for the same namespace is still closed. */
    static const char alt[] = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
                              "xmlns='jabber:client'></s:stream>";
    rec_new(&r, &roomy);
    assert_int_equal(feed_by(&r, alt, strlen(alt), 0, &cond), 0);
    assert_int_equal(r.closes, 1);
    rec_free(&r);
    /* A mismatched close is not well-formed. */
    expect_error(HEADER "</stream>", TERN_SE_NOT_WELL_FORMED);
}

static void test_attributes(void **state) {
    static const char in[] = HEADER "<message xml:lang='de' xmlns:foo='urn:foo' foo:bar='1' "
                                    "type='chat' xml:space='preserve'>"
                                    "<body xml:lang='fr' foo:x='y'>Salut</body></message>";
    struct rec r;
    rec_new(&r, &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, in, strlen(in), 0, &cond), 0);
    assert_int_equal(r.stanzas, 1);
    struct tern_xml *m = r.last;
    /* xml:* kept, foo:* dropped, xmlns:foo not an attribute. */
    assert_int_equal(m->nattrs, 3);
    assert_string_equal(m->attrs[0].name, "xml:lang");
    assert_string_equal(m->attrs[0].value, "de");
    assert_string_equal(m->attrs[1].name, "type");
    assert_string_equal(m->attrs[2].name, "xml:space");
    struct tern_xml *body = tern_xml_first_el(m);
    assert_int_equal(body->nattrs, 1);
    assert_string_equal(tern_xml_attr(body, "xml:lang"), "fr");
    assert_string_equal(r.log.data + strcspn(r.log.data, "\n") + 1,
                        "stanza <message xml:lang='de' type='chat' xml:space='preserve'>"
                        "<body xml:lang='fr'>Salut</body></message>\n");
    rec_free(&r);
}

static void test_keepalive(void **state) {
    struct rec r;
    rec_new(&r, &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, HEADER, strlen(HEADER), 0, &cond), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(feed(r.p, " ", 1, &cond), 0);
    assert_int_equal(feed(r.p, "\r\n<presence/>\n", 14, &cond), 0);
    assert_int_equal(r.stanzas, 1);
    rec_free(&r);
}

static void test_no_callbacks(void **state) {
    /* NULL callbacks are allowed; stanzas are then freed by the parser. */
    struct tern_xml_parser_cb none = {NULL, NULL, NULL};
    struct tern_xml_parser *p = tern_xml_parser_new(&none, NULL, "jabber:client", &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed(p, client_stream, strlen(client_stream), &cond), 0);
    tern_xml_parser_free(&p);
    assert_null(p);
    tern_xml_parser_free(&p);
}

static void test_free_mid_stanza(void **state) {
    /* Freeing with a partial stanza and held bytes leaks nothing (ASan checks). */
    struct rec r;
    rec_new(&r, &roomy);
    enum tern_stream_error cond;
    assert_int_equal(feed_by(&r, HEADER "<iq><query><item>text", strlen(HEADER) + 21, 0, &cond), 0);
    char pad[3000];
    memset(pad, 'x', sizeof(pad));
    assert_int_equal(feed(r.p, "<a b='", 6, &cond), 0);
    for (size_t i = 0; i < sizeof(pad); i += 100)
        assert_int_equal(feed(r.p, pad + i, 100, &cond), 0);
    rec_free(&r);
}

/* ---- trimming: releasing expat between stanzas ----------------------- */

static void expect_trim(struct rec *r, int want) {
    int rc = tern_xml_parser_trim(r->p);
    if (rc != want)
        fail_msg("trim: %d, want %d (log so far:\n%s)", rc, want, r->log.data ? r->log.data : "");
}

static void feed_ok(struct rec *r, const char *s) {
    enum tern_stream_error cond = TERN_SE_NONE;
    int rc = tern_xml_parser_feed(r->p, s, strlen(s), &cond);
    if (rc != 0)
        fail_msg("feeding %s: %d <%s/>", s, rc, tern_stream_error_name(cond));
}

static void test_trim_when(void **state) {
    struct rec r;
    rec_new(&r, &roomy);
    /* Nothing fed yet: nothing held. */
    expect_trim(&r, 0);
    /* Inside the header (or its XML declaration): busy. */
    feed_ok(&r, "<?xml version='1.0'?>");
    expect_trim(&r, TERN_E_BUSY);
    feed_ok(&r, HEADER);
    expect_trim(&r, 0);
    expect_trim(&r, 0);
    feed_ok(&r, "<presence/>");
    expect_trim(&r, 0);
    /* Inside a stanza, a tag, a reference: busy, and nothing lost. */
    feed_ok(&r, "<message><body>a");
    expect_trim(&r, TERN_E_BUSY);
    feed_ok(&r, "b&amp");
    expect_trim(&r, TERN_E_BUSY);
    feed_ok(&r, ";c</body></message><pres");
    expect_trim(&r, TERN_E_BUSY);
    feed_ok(&r, "ence/>");
    expect_trim(&r, 0);
    assert_int_equal(r.stanzas, 3);
    assert_non_null(strstr(r.log.data, "stanza <message><body>ab&amp;c</body></message>\n"));
    /* Whitespace is consumed; a trailing CR is not (it may start CR LF), nor
     * is a partial UTF-8 character. */
    feed_ok(&r, " \n\t");
    expect_trim(&r, 0);
    feed_ok(&r, "\r");
    expect_trim(&r, TERN_E_BUSY);
    feed_ok(&r, "\n");
    expect_trim(&r, 0);
    /* After the stream's end: busy (a new parser would reopen it). */
    feed_ok(&r, "</stream:stream>");
    assert_int_equal(r.closes, 1);
    expect_trim(&r, TERN_E_BUSY);
    enum tern_stream_error cond;
    assert_int_equal(tern_xml_parser_feed(r.p, "<presence/>", 11, &cond), TERN_E_INVAL);
    assert_int_equal(cond, TERN_SE_NOT_WELL_FORMED);
    /* Failed: everything goes, the error stays. */
    expect_trim(&r, 0);
    assert_int_equal(tern_xml_parser_feed(r.p, "<presence/>", 11, &cond), TERN_E_INVAL);
    assert_int_equal(cond, TERN_SE_NOT_WELL_FORMED);
    /* Reset: a new stream from scratch. */
    tern_xml_parser_reset(r.p);
    expect_trim(&r, 0);
    feed_ok(&r, HEADER "<iq/>");
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 4);
    expect_trim(&r, 0);
    /* Stopped: everything goes until reset. */
    feed_ok(&r, "<message><body>x");
    tern_xml_parser_stop(r.p);
    expect_trim(&r, 0);
    assert_int_equal(tern_xml_parser_feed(r.p, "</body></message>", 17, &cond), TERN_E_CLOSED);
    tern_xml_parser_reset(r.p);
    feed_ok(&r, HEADER "<iq/>");
    assert_int_equal(r.stanzas, 5);
    rec_free(&r);
}

static void trim_from_callback(void *ud, struct tern_xml *st) {
    struct rec *r = ud;
    r->stanzas++;
    assert_int_equal(tern_xml_parser_trim(r->p), TERN_E_BUSY);
    tern_xml_unref(&st);
}

static void test_trim_from_callback(void **state) {
    struct rec r;
    rec_new(&r, &roomy);
    tern_xml_parser_free(&r.p);
    struct tern_xml_parser_cb cb = {NULL, trim_from_callback, NULL};
    r.p = tern_xml_parser_new(&cb, &r, "jabber:client", &roomy);
    feed_ok(&r, HEADER "<iq/>");
    expect_trim(&r, 0);
    feed_ok(&r, "<iq/><iq/>");
    assert_int_equal(r.stanzas, 3);
    rec_free(&r);
}

/* After expat is recreated the stream is still open, with the header's
 * namespaces, and stream_open does not fire again. */
static void test_trim_keeps_context(void **state) {
    struct rec r;
    rec_new(&r, &roomy);
    /* Declarations that need escaping to be written back, a second prefix,
     * and the streams namespace under another prefix. */
    feed_ok(&r, "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client' "
                "xmlns:p=\"urn:it's&amp;&lt;&#9;&#10;&#13;\xc3\xa9\" to='x'>");
    expect_trim(&r, 0);
    feed_ok(&r, "<message><p:x/></message>");
    expect_trim(&r, 0);
    feed_ok(&r, "<p:iq/>");
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 2);
    assert_string_equal(r.last->ns, "urn:it's&<\t\n\r\xc3\xa9");
    assert_string_equal(r.last->name, "iq");
    /* A prefix of a stanza stays out of scope after the stanza. */
    feed_ok(&r, "<message xmlns:q='urn:q'/>");
    expect_trim(&r, 0);
    enum tern_stream_error cond;
    assert_int_equal(tern_xml_parser_feed(r.p, "<q:x/>", 6, &cond), TERN_E_INVAL);
    assert_int_equal(cond, TERN_SE_BAD_NAMESPACE_PREFIX);
    rec_free(&r);

    /* Closed with the header's own prefix; another prefix does not match. */
    static const char alt[] = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
                              "xmlns='jabber:client'>";
    rec_new(&r, &roomy);
    feed_ok(&r, alt);
    expect_trim(&r, 0);
    feed_ok(&r, "</s:stream>");
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.closes, 1);
    rec_free(&r);
    rec_new(&r, &roomy);
    feed_ok(&r, alt);
    expect_trim(&r, 0);
    assert_int_equal(tern_xml_parser_feed(r.p, "</stream:stream>", 16, &cond), TERN_E_INVAL);
    assert_int_equal(cond, TERN_SE_NOT_WELL_FORMED);
    assert_int_equal(r.closes, 0);
    rec_free(&r);

    /* Two prefixes for the streams namespace: which one the header used is
     * not known, so expat is kept, and the stream works as ever. */
    rec_new(&r, &roomy);
    feed_ok(&r, "<b:stream xmlns:a='http://etherx.jabber.org/streams' "
                "xmlns:b='http://etherx.jabber.org/streams' xmlns='jabber:client'>");
    expect_trim(&r, TERN_E_BUSY);
    feed_ok(&r, "<presence/></b:stream>");
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(r.closes, 1);
    rec_free(&r);
}

/* Byte offsets survive recreation: the limits hold to the byte. */
static void test_trim_limits(void **state) {
    static const char stanza[] = "<message to='a@b'><body>0123456789</body></message>";
    size_t slen = strlen(stanza);
    struct tern_xml_limits lim = {slen, 4096, 32};
    for (int over = 0; over < 2; over++) {
        struct rec r;
        rec_new(&r, &lim);
        feed_ok(&r, HEADER "<presence/>  ");
        expect_trim(&r, 0);
        enum tern_stream_error cond = TERN_SE_NONE;
        int rc = 0;
        /* Exactly the limit, then one byte more (a longer body). */
        char in[128];
        snprintf(in, sizeof in, "<message to='a@b'><body>0123456789%s</body></message>",
                 over ? "x" : "");
        for (size_t i = 0; in[i] && rc == 0; i++) {
            rc = tern_xml_parser_feed(r.p, in + i, 1, &cond);
            tern_xml_parser_trim(r.p);
        }
        if (over) {
            assert_int_equal(rc, TERN_E_LIMIT);
            assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
            assert_int_equal(r.stanzas, 1);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(r.stanzas, 2);
        }
        rec_free(&r);
    }
    /* A token that never ends right after recreation is held to the limit. */
    struct tern_xml_limits big = {10000, 4096, 32};
    struct rec r;
    rec_new(&r, &big);
    feed_ok(&r, HEADER);
    expect_trim(&r, 0);
    enum tern_stream_error cond = TERN_SE_NONE;
    size_t total = 0;
    int rc = 0;
    while (rc == 0 && total < (1u << 20)) {
        rc = tern_xml_parser_feed(r.p, total ? "xxxxxxxxxx" : "<message a", 10, &cond);
        total += 10;
        assert_int_equal(tern_xml_parser_trim(r.p), rc ? 0 : TERN_E_BUSY);
    }
    assert_int_equal(cond, TERN_SE_POLICY_VIOLATION);
    assert_true(total > 10000 && total <= 10000 + 4096 + 10);
    rec_free(&r);
    /* The header limit does not count the replayed header. */
    struct tern_xml_limits tight = {1 << 20, strlen(HEADER), 32};
    rec_new(&r, &tight);
    feed_ok(&r, HEADER);
    for (int i = 0; i < 5; i++) {
        expect_trim(&r, 0);
        feed_ok(&r, "<presence/>");
    }
    assert_int_equal(r.stanzas, 5);
    rec_free(&r);
}

/* Every split of a stream with stanzas, keepalives and a close, trimmed
 * after every piece, against the whole stream untrimmed. */
static void test_trim_split(void **state) {
    static const char in[] =
        "<?xml version='1.0'?>\n<s:stream xmlns:s='http://etherx.jabber.org/streams' "
        "xmlns='jabber:client' xmlns:db='jabber:server:dialback' version='1.0'>\r\n"
        "<message><body>caf\xc3\xa9 &amp; more\r\n</body></message> \r\n"
        "<db:result to='a'>k</db:result>\n"
        "<iq type='get'><query xmlns='jabber:iq:roster'/></iq><![CDATA[ ]]>"
        "<presence/></s:stream>";
    int old = trim_after_feed;
    trim_after_feed = 0;
    int rc_whole;
    enum tern_stream_error cond_whole;
    char *whole = log_whole(in, strlen(in), &roomy, &rc_whole, &cond_whole);
    assert_int_equal(rc_whole, 0);
    trim_after_feed = 1;
    assert_split_invariant(in, strlen(in), &roomy);
    trim_after_feed = old;
    /* Three pieces, trimmed in between, at every pair of boundaries. */
    size_t len = strlen(in);
    for (size_t a = 0; a <= len; a += 3) {
        for (size_t b = a; b <= len; b += 5) {
            struct rec r;
            rec_new(&r, &roomy);
            enum tern_stream_error cond = TERN_SE_NONE;
            assert_int_equal(tern_xml_parser_feed(r.p, in, a, &cond), 0);
            tern_xml_parser_trim(r.p);
            assert_int_equal(tern_xml_parser_feed(r.p, in + a, b - a, &cond), 0);
            tern_xml_parser_trim(r.p);
            assert_int_equal(tern_xml_parser_feed(r.p, in + b, len - b, &cond), 0);
            if (strcmp(r.log.data, whole) != 0)
                fail_msg("split at %zu, %zu differs:\n%s", a, b, r.log.data);
            rec_free(&r);
        }
    }
    free(whole);
}

/* idle() releases the first four times on a stream, from its first stanza
 * on; trim() always does. */
static void test_idle_eager(void **state) {
    struct rec r;
    rec_new(&r, &roomy);
    assert_int_equal(tern_xml_parser_idle(r.p), 0); /* nothing held yet */
    feed_ok(&r, HEADER);
    assert_int_equal(tern_xml_parser_idle(r.p), TERN_E_BUSY);
    char released[100];
    for (int i = 1; i < 100; i++) {
        feed_ok(&r, "<presence/>");
        released[i] = tern_xml_parser_idle(r.p) == 0;
    }
    for (int i = 1; i < 100; i++)
        if (released[i] != (i <= 4))
            fail_msg("after stanza %d: released %d", i, released[i]);
    /* After that: busy, but trim releases, and the stream goes on. */
    feed_ok(&r, "<presence/>");
    assert_int_equal(tern_xml_parser_idle(r.p), TERN_E_BUSY);
    expect_trim(&r, 0);
    assert_int_equal(tern_xml_parser_idle(r.p), 0);
    feed_ok(&r, "<presence/>");
    assert_int_equal(r.stanzas, 101);
    /* Inside a stanza idle() is busy like trim(), and uses up nothing. */
    tern_xml_parser_reset(r.p);
    feed_ok(&r, HEADER "<message>");
    assert_int_equal(tern_xml_parser_idle(r.p), TERN_E_BUSY);
    feed_ok(&r, "</message>");
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tern_xml_parser_idle(r.p), 0);
        feed_ok(&r, "<presence/>");
    }
    assert_int_equal(tern_xml_parser_idle(r.p), TERN_E_BUSY);
    /* A new stream has its four again. */
    tern_xml_parser_reset(r.p);
    feed_ok(&r, HEADER "<iq/>");
    assert_int_equal(tern_xml_parser_idle(r.p), 0);
    rec_free(&r);
}

static int trim_on(void **state) {
    trim_after_feed = 1;
    return 0;
}

static int trim_off(void **state) {
    trim_after_feed = 0;
    return 0;
}

/* A test run again with trim_after_feed set, under its own name. */
#define TRIMMED(f)                                                                                 \
    { #f "_trimmed", f, trim_on, trim_off, NULL }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_stream),
        cmocka_unit_test(test_split_every_byte),
        cmocka_unit_test(test_split_big_tokens),
        cmocka_unit_test(test_utf8_split),
        cmocka_unit_test(test_restricted_xml),
        cmocka_unit_test(test_xml_declaration),
        cmocka_unit_test(test_namespace_errors),
        cmocka_unit_test(test_not_well_formed),
        cmocka_unit_test(test_incomplete_is_not_error),
        cmocka_unit_test(test_stanza_size),
        cmocka_unit_test(test_huge_attribute),
        cmocka_unit_test(test_huge_text),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_header_size),
        cmocka_unit_test(test_trickled_token),
        cmocka_unit_test(test_stop_and_reset),
        cmocka_unit_test(test_reset_from_callback),
        cmocka_unit_test(test_stop_outside_callback),
        cmocka_unit_test(test_feed_from_callback),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_no_callbacks),
        cmocka_unit_test(test_free_mid_stanza),
        cmocka_unit_test(test_trim_when),
        cmocka_unit_test(test_trim_from_callback),
        cmocka_unit_test(test_trim_keeps_context),
        cmocka_unit_test(test_trim_limits),
        cmocka_unit_test(test_trim_split),
        cmocka_unit_test(test_idle_eager),
        /* The same again with a trim after every feed (trim_after_feed). */
        TRIMMED(test_client_stream),
        TRIMMED(test_split_every_byte),
        TRIMMED(test_split_big_tokens),
        TRIMMED(test_utf8_split),
        TRIMMED(test_restricted_xml),
        TRIMMED(test_xml_declaration),
        TRIMMED(test_namespace_errors),
        TRIMMED(test_not_well_formed),
        TRIMMED(test_incomplete_is_not_error),
        TRIMMED(test_stanza_size),
        TRIMMED(test_huge_attribute),
        TRIMMED(test_huge_text),
        TRIMMED(test_depth),
        TRIMMED(test_header_size),
        TRIMMED(test_trickled_token),
        TRIMMED(test_stop_and_reset),
        TRIMMED(test_reset_from_callback),
        TRIMMED(test_stop_outside_callback),
        TRIMMED(test_feed_from_callback),
        TRIMMED(test_close),
        TRIMMED(test_attributes),
        TRIMMED(test_keepalive),
        TRIMMED(test_no_callbacks),
        TRIMMED(test_free_mid_stanza),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
