/* Unit tests for src/server/stanza.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/buf.h"
#include "server/stanza.h"
#include "xml/xml.h"

static char *serialize(const struct tern_xml *el) {
    struct tern_buf b;
    tern_buf_init(&b, 65536);
    assert_int_equal(tern_xml_serialize(el, TERN_NS_CLIENT, &b), 0);
    return tern_buf_take(&b);
}

static struct tern_xml *make_iq(const char *type) {
    struct tern_xml *iq = tern_xml_new(TERN_NS_CLIENT, "iq");
    tern_xml_set_attr(iq, "type", type);
    tern_xml_set_attr(iq, "id", "q1");
    tern_xml_set_attr(iq, "from", "alice@localhost/phone");
    tern_xml_set_attr(iq, "to", "localhost");
    tern_xml_add_el(iq, "urn:example", "query");
    return iq;
}

static void test_error_reply(void **state) {
    struct tern_xml *iq = make_iq("get");
    struct tern_stanza_error e = {TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE, NULL};
    struct tern_xml *r = tern_stanza_error_reply(iq, &e);
    char *s = serialize(r);
    assert_string_equal(s, "<iq type='error' id='q1' from='localhost' to='alice@localhost/phone'>"
                           "<query xmlns='urn:example'/>"
                           "<error type='cancel'><service-unavailable "
                           "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    free(s);
    /* the original is untouched */
    assert_string_equal(tern_xml_attr(iq, "type"), "get");
    tern_xml_unref(&r);
    tern_xml_unref(&iq);
}

static void test_error_reply_with_text(void **state) {
    struct tern_xml *m = tern_xml_new(TERN_NS_CLIENT, "message");
    tern_xml_set_attr(m, "from", "a@x/r");
    struct tern_stanza_error e = {TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, "why & how"};
    struct tern_xml *r = tern_stanza_error_reply(m, &e);
    char *s = serialize(r);
    assert_string_equal(s, "<message to='a@x/r' type='error'><error type='modify'>"
                           "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                           "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>"
                           "why &amp; how</text></error></message>");
    free(s);
    tern_xml_unref(&r);
    tern_xml_unref(&m);
}

static void test_result(void **state) {
    struct tern_xml *iq = make_iq("set");
    struct tern_xml *r = tern_stanza_result(iq);
    char *s = serialize(r);
    assert_string_equal(s,
                        "<iq type='result' id='q1' to='alice@localhost/phone' from='localhost'/>");
    free(s);
    tern_xml_unref(&r);
    tern_xml_unref(&iq);
}

static void test_is_response(void **state) {
    struct tern_xml *iq = make_iq("result");
    assert_true(tern_stanza_is_response(iq));
    tern_xml_set_attr(iq, "type", "error");
    assert_true(tern_stanza_is_response(iq));
    tern_xml_set_attr(iq, "type", "get");
    assert_false(tern_stanza_is_response(iq));
    tern_xml_unref(&iq);
    struct tern_xml *m = tern_xml_new(TERN_NS_CLIENT, "message");
    tern_xml_set_attr(m, "type", "result"); /* not a response kind for messages */
    assert_false(tern_stanza_is_response(m));
    tern_xml_unref(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_error_reply_with_text),
        cmocka_unit_test(test_result),
        cmocka_unit_test(test_is_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
