/* Tests for src/xml/serialize.c: namespaces, escaping, dropped characters,
 * round trips through the parser, and the buffer ceiling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "xml/parser.h"
#include "xml/xml.h"

#define BIG ((size_t)1 << 20)

/* Serialize into a fresh buffer and return the string (caller frees). */
static char *ser(const struct tern_xml *el, const char *parent_ns) {
    struct tern_buf b;
    tern_buf_init(&b, BIG);
    assert_int_equal(tern_xml_serialize(el, parent_ns, &b), 0);
    char *s = tern_buf_take(&b);
    return s ? s : strdup("");
}

static void assert_ser(const struct tern_xml *el, const char *parent_ns, const char *want) {
    char *got = ser(el, parent_ns);
    assert_string_equal(got, want);
    free(got);
}

static void test_namespaces(void **state) {
    struct tern_xml *iq = tern_xml_new("jabber:client", "iq");
    tern_xml_set_attr(iq, "type", "get");
    struct tern_xml *q = tern_xml_add_el(iq, "jabber:iq:roster", "query");
    tern_xml_add_el(q, NULL, "item");              /* same as parent: no xmlns */
    tern_xml_add_el(q, "", "plain");               /* no namespace: xmlns='' */
    tern_xml_add_el(iq, "jabber:client", "error"); /* back to the stream's */
    tern_xml_add_el(q, "jabber:client", "back");   /* differs from parent */

    assert_ser(iq, "jabber:client",
               "<iq type='get'><query xmlns='jabber:iq:roster'><item/><plain xmlns=''/>"
               "<back xmlns='jabber:client'/></query><error/></iq>");
    /* A root in another namespace than the scope declares its own. */
    assert_ser(iq, "jabber:server",
               "<iq xmlns='jabber:client' type='get'><query xmlns='jabber:iq:roster'><item/>"
               "<plain xmlns=''/><back xmlns='jabber:client'/></query><error/></iq>");
    assert_ser(q, "jabber:iq:roster",
               "<query><item/><plain xmlns=''/><back xmlns='jabber:client'/></query>");
    /* NULL scope is no namespace. */
    struct tern_xml *bare = tern_xml_new("", "bare");
    assert_ser(bare, NULL, "<bare/>");
    assert_ser(bare, "jabber:client", "<bare xmlns=''/>");
    tern_xml_unref(&bare);
    tern_xml_unref(&iq);
}

static void test_empty_and_text(void **state) {
    struct tern_xml *m = tern_xml_new("jabber:client", "message");
    assert_ser(m, "jabber:client", "<message/>");
    struct tern_xml *b = tern_xml_add_el(m, NULL, "body");
    tern_xml_add_text(b, "hi", 2);
    tern_xml_add_el(m, NULL, "thread");
    assert_ser(m, "jabber:client", "<message><body>hi</body><thread/></message>");
    /* A text node serializes as its escaped text. */
    assert_ser(b->children, "jabber:client", "hi");
    tern_xml_unref(&m);
}

static void test_escaping(void **state) {
    const char *special = "a&b<c>d'e\"f";
    struct tern_xml *el = tern_xml_new("", "x");
    tern_xml_set_attr(el, "v", special);
    tern_xml_add_text(el, special, strlen(special));
    assert_ser(el, "", "<x v='a&amp;b&lt;c&gt;d&apos;e&quot;f'>a&amp;b&lt;c&gt;d'e\"f</x>");
    tern_xml_unref(&el);

    /* Namespace URIs are attribute values too. */
    el = tern_xml_new("urn:a'b&c", "y");
    assert_ser(el, "", "<y xmlns='urn:a&apos;b&amp;c'/>");
    tern_xml_unref(&el);

    /* Whitespace: kept in text (CR as a reference), all referenced in attributes. */
    el = tern_xml_new("", "w");
    tern_xml_set_attr(el, "v", "1\t2\n3\r4");
    tern_xml_add_text(el, "1\t2\n3\r4", 7);
    assert_ser(el, "", "<w v='1&#9;2&#10;3&#13;4'>1\t2\n3&#13;4</w>");
    tern_xml_unref(&el);

    struct tern_buf b;
    tern_buf_init(&b, 100);
    assert_int_equal(tern_xml_escape(&b, "<&>'\"", 5), 0);
    assert_string_equal(b.data, "&lt;&amp;&gt;&apos;&quot;");
    tern_buf_free(&b);
}

static void test_dropped_chars(void **state) {
    /* C0 controls other than tab/LF/CR, NUL, and bytes that are not valid
     * UTF-8 or encode U+FFFE/U+FFFF/surrogates are dropped; DEL and valid
     * multibyte characters stay. */
    static const char in[] = "a\x01"
                             "b\x1f"
                             "c\x00"
                             "d\x7f"
                             "e\xff"
                             "f\xc3"
                             "g\xc0\xaf"
                             "h\xed\xa0\x80"
                             "i\xef\xbf\xbe"
                             "j\xef\xbf\xbf"
                             "k\xf4\x90\x80\x80"
                             "l\xe0\x80\xaf"
                             "m\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd"
                             "\xe2\x82";
    struct tern_xml *el = tern_xml_new("", "t");
    tern_xml_add_text(el, in, sizeof(in) - 1);
    tern_xml_set_attr(el, "v", "x\x02y\x0bz");
    assert_ser(el, "",
               "<t v='xyz'>abcd\x7f"
               "efghijkl"
               "m\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd</t>");
    tern_xml_unref(&el);
}

/* ---- round trips through the parser ---------------------------------- */

struct collect {
    struct tern_xml *stanzas[32];
    int n;
};

static void on_stanza(void *ud, struct tern_xml *st) {
    struct collect *c = ud;
    assert_true(c->n < 32);
    c->stanzas[c->n++] = st;
}

static const struct tern_xml_parser_cb collect_cb = {NULL, on_stanza, NULL};
static const struct tern_xml_limits roomy = {1 << 20, 1 << 16, 64};

#define HEADER                                                                                     \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "        \
    "version='1.0'>"

static void parse_all(const char *body, size_t len, struct collect *c) {
    struct tern_xml_parser *p = tern_xml_parser_new(&collect_cb, c, "jabber:client", &roomy);
    enum tern_stream_error cond = TERN_SE_NONE;
    assert_int_equal(tern_xml_parser_feed(p, HEADER, strlen(HEADER), &cond), 0);
    assert_int_equal(tern_xml_parser_feed(p, body, len, &cond), 0);
    tern_xml_parser_free(&p);
}

static void assert_trees_equal(const struct tern_xml *x, const struct tern_xml *y) {
    assert_int_equal(x->kind, y->kind);
    if (x->kind == TERN_XML_TEXT) {
        assert_int_equal(x->text_len, y->text_len);
        assert_memory_equal(x->text, y->text, x->text_len);
        return;
    }
    assert_string_equal(x->ns, y->ns);
    assert_string_equal(x->name, y->name);
    assert_int_equal(x->nattrs, y->nattrs);
    for (size_t i = 0; i < x->nattrs; i++) {
        assert_string_equal(x->attrs[i].name, y->attrs[i].name);
        assert_string_equal(x->attrs[i].value, y->attrs[i].value);
    }
    const struct tern_xml *cx = x->children, *cy = y->children;
    for (; cx && cy; cx = cx->next, cy = cy->next)
        assert_trees_equal(cx, cy);
    assert_null(cx);
    assert_null(cy);
}

static void test_round_trip_parsed(void **state) {
    static const char body[] =
        "<message to='juliet@example.com' type='chat' xml:lang='en' id='a&amp;b'>"
        "<body>I &lt;3 &quot;you&quot; &amp; &apos;you&apos; &gt; all &#x263A; \xc3\xa9</body>"
        "<x xmlns='jabber:x:data' type='form'><field var='v&#9;w&#10;x&#13;'/></x>"
        "<html xmlns='http://jabber.org/protocol/xhtml-im'>"
        "<body xmlns='http://www.w3.org/1999/xhtml'><p>a<b>b</b>c</p></body></html>"
        "<plain xmlns=''>cr&#13;lf<![CDATA[ <raw> & ]]></plain>"
        "</message>"
        "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
        "<p:presence xmlns:p='jabber:client'><p:show>away</p:show></p:presence>";
    struct collect first = {0}, second = {0};
    parse_all(body, sizeof(body) - 1, &first);
    assert_int_equal(first.n, 3);

    struct tern_buf b;
    tern_buf_init(&b, BIG);
    for (int i = 0; i < first.n; i++)
        assert_int_equal(tern_xml_serialize(first.stanzas[i], "jabber:client", &b), 0);
    parse_all(b.data, b.len, &second);
    assert_int_equal(second.n, first.n);
    for (int i = 0; i < first.n; i++)
        assert_trees_equal(first.stanzas[i], second.stanzas[i]);

    /* Serializing the reparsed trees gives the same bytes again. */
    struct tern_buf b2;
    tern_buf_init(&b2, BIG);
    for (int i = 0; i < second.n; i++)
        assert_int_equal(tern_xml_serialize(second.stanzas[i], "jabber:client", &b2), 0);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    tern_buf_free(&b);
    tern_buf_free(&b2);

    /* Spot checks of what the parser kept. */
    struct tern_xml *m = first.stanzas[0];
    assert_string_equal(tern_xml_attr(m, "id"), "a&b");
    char *t = tern_xml_text(tern_xml_child(m, "jabber:client", "body"));
    assert_string_equal(t, "I <3 \"you\" & 'you' > all \xe2\x98\xba \xc3\xa9");
    free(t);
    struct tern_xml *field = tern_xml_first_el(tern_xml_child(m, "jabber:x:data", "x"));
    assert_string_equal(tern_xml_attr(field, "var"), "v\tw\nx\r");
    t = tern_xml_text(tern_xml_child(m, "", "plain"));
    assert_string_equal(t, "cr\rlf <raw> & ");
    free(t);

    for (int i = 0; i < first.n; i++) {
        tern_xml_unref(&first.stanzas[i]);
        tern_xml_unref(&second.stanzas[i]);
    }
}

static void test_round_trip_built(void **state) {
    /* A tree built in code with every special character survives, minus the
     * characters that cannot be represented. */
    struct tern_xml *m = tern_xml_new("jabber:client", "message");
    tern_xml_set_attr(m, "id", "<&>'\"\t\n\r\x01z");
    struct tern_xml *b = tern_xml_add_el(m, NULL, "body");
    const char *txt = "<&>'\"\t\n\r\x01z]]>";
    tern_xml_add_text(b, txt, strlen(txt));
    tern_xml_add_el(m, "", "none");

    struct tern_buf out;
    tern_buf_init(&out, BIG);
    assert_int_equal(tern_xml_serialize(m, "jabber:client", &out), 0);
    struct collect c = {0};
    parse_all(out.data, out.len, &c);
    tern_buf_free(&out);
    assert_int_equal(c.n, 1);
    assert_string_equal(tern_xml_attr(c.stanzas[0], "id"), "<&>'\"\t\n\rz");
    char *t = tern_xml_text(tern_xml_first_el(c.stanzas[0]));
    assert_string_equal(t, "<&>'\"\t\n\rz]]>");
    free(t);
    struct tern_xml *none = tern_xml_next(tern_xml_first_el(c.stanzas[0]), NULL, NULL);
    assert_string_equal(none->ns, "");
    tern_xml_unref(&c.stanzas[0]);
    tern_xml_unref(&m);
}

static void test_ceiling(void **state) {
    struct tern_xml *m = tern_xml_new("jabber:client", "message");
    tern_xml_set_attr(m, "to", "a&b");
    struct tern_xml *b = tern_xml_add_el(m, NULL, "body");
    tern_xml_add_text(b, "x<y", 3);
    tern_xml_add_el(m, "urn:x", "x");
    char *full = ser(m, "jabber:client");
    size_t len = strlen(full);
    assert_string_equal(full,
                        "<message to='a&amp;b'><body>x&lt;y</body><x xmlns='urn:x'/></message>");

    /* Every ceiling short of the full length fails and leaves the buffer as it was. */
    for (size_t max = 0; max < len + 5; max++) {
        struct tern_buf out;
        tern_buf_init(&out, max + 5);
        assert_int_equal(tern_buf_adds(&out, "prev:"), 0);
        out.max = max + 5;
        int rc = tern_xml_serialize(m, "jabber:client", &out);
        if (max < len) {
            assert_int_equal(rc, TERN_E_LIMIT);
            assert_int_equal(out.len, 5);
            assert_string_equal(out.data, "prev:");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(out.len, 5 + len);
            assert_string_equal(out.data + 5, full);
        }
        tern_buf_free(&out);
    }
    free(full);

    struct tern_buf small;
    tern_buf_init(&small, 3);
    assert_int_equal(tern_xml_escape(&small, "&", 1), TERN_E_LIMIT);
    tern_buf_free(&small);
    tern_xml_unref(&m);
}

static void test_deep_tree(void **state) {
    /* The serializer does not recurse. */
    struct tern_xml *root = tern_xml_new("", "r");
    struct tern_xml *cur = root;
    for (int i = 0; i < 100000; i++)
        cur = tern_xml_add_el(cur, NULL, "d");
    struct tern_buf out;
    tern_buf_init(&out, BIG);
    assert_int_equal(tern_xml_serialize(root, "", &out), 0);
    assert_int_equal(out.len, strlen("<r>") + 100000 * strlen("<d></d>") - 3 + strlen("</r>"));
    tern_buf_free(&out);
    tern_xml_unref(&root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_namespaces),        cmocka_unit_test(test_empty_and_text),
        cmocka_unit_test(test_escaping),          cmocka_unit_test(test_dropped_chars),
        cmocka_unit_test(test_round_trip_parsed), cmocka_unit_test(test_round_trip_built),
        cmocka_unit_test(test_ceiling),           cmocka_unit_test(test_deep_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
