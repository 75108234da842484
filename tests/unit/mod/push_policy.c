/*
 * Unit tests for src/mod/push_policy.c: which stanzas the default policy
 * pushes (a body, an encrypted message, a call invitation; never a chat
 * state or a receipt alone), which registrations it picks, and what a
 * notification reveals (placeholder or text, sender, never an encrypted
 * message's fallback body).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mod/push_policy.h"
#include "xml/parser.h"
#include "xml/xml.h"
#include "xmpp/errors.h"

static const struct tern_push_policy *P = &tern_push_default_policy;

static struct tern_xml *parse(const char *s) {
    struct tern_xml *x = NULL;
    assert_int_equal(tern_xml_parse_one(TERN_NS_CLIENT, s, strlen(s), 1 << 20, 32, &x), 0);
    return x;
}

/* classify a stanza given as text; the item's pointers die with the stanza, so copy the body. */
static enum tern_push_class classify(const char *s, char *body, size_t size) {
    struct tern_xml *x = parse(s);
    struct tern_push_item it;
    enum tern_push_class cls = P->classify(x, &it);
    assert_int_equal(cls, it.cls);
    if (body) {
        body[0] = '\0';
        if (it.body) {
            assert_true(it.body_len < size);
            memcpy(body, it.body, it.body_len);
            body[it.body_len] = '\0';
        }
    }
    if (cls == TERN_PUSH_NONE) {
        assert_null(it.sender);
        assert_null(it.body);
    }
    tern_xml_unref(&x);
    return cls;
}

#define MSG(inner)                                                                                 \
    "<message from='bob@example.org/phone' to='alice@localhost' type='chat'>" inner "</message>"
#define OMEMO_OLD                                                                                  \
    "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>a2V5</key>"    \
    "<iv>aXY=</iv></header><payload>cGF5</payload></encrypted>"
#define FALLBACK "<body>I sent you an OMEMO encrypted message</body>"

static void test_classify_body(void **state) {
    (void)state;
    char body[256];
    assert_int_equal(classify(MSG("<body>hello</body>"), body, sizeof body), TERN_PUSH_MESSAGE);
    assert_string_equal(body, "hello");
    /* A body with a chat state and a receipt request is still a message. */
    assert_int_equal(classify(MSG("<active xmlns='http://jabber.org/protocol/chatstates'/>"
                                  "<request xmlns='urn:xmpp:receipts'/><body>hi</body>"),
                              body, sizeof body),
                     TERN_PUSH_MESSAGE);
    assert_string_equal(body, "hi");
    /* No type is 'normal'. */
    assert_int_equal(classify("<message from='b@x'><body>n</body></message>", NULL, 0),
                     TERN_PUSH_MESSAGE);
    /* Empty or blank bodies carry nothing. */
    assert_int_equal(classify(MSG("<body/>"), NULL, 0), TERN_PUSH_NONE);
    assert_int_equal(classify(MSG("<body> \n\t </body>"), NULL, 0), TERN_PUSH_NONE);
}

static void test_classify_nothing_for_a_person(void **state) {
    (void)state;
    const char *none[] = {
        MSG("<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
        MSG("<active xmlns='http://jabber.org/protocol/chatstates'/>"),
        MSG("<received xmlns='urn:xmpp:receipts' id='m1'/>"),
        MSG("<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"),
        MSG("<received xmlns='urn:xmpp:receipts' id='m1'/>"
            "<paused xmlns='http://jabber.org/protocol/chatstates'/>"),
        /* An OMEMO key transport element: no payload, nothing to read. */
        MSG("<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>k</key>"
            "<iv>i</iv></header></encrypted>"),
        MSG("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/></encrypted>"),
        /* XEP-0353 session messages other than the proposal. */
        MSG("<retract xmlns='urn:xmpp:jingle-message:0' id='c'/>"),
        MSG("<accept xmlns='urn:xmpp:jingle-message:0' id='c'/>"),
        "<message type='error' from='b@x'><body>bounced</body><error type='cancel'/></message>",
        "<message type='groupchat' from='room@muc/b'><body>in a room</body></message>",
        "<message type='headline' from='news@x'><body>news</body></message>",
        "<presence from='b@x'/>",
        "<iq type='set' from='b@x' id='1'><query xmlns='jabber:iq:roster'/></iq>",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        if (classify(none[i], NULL, 0) != TERN_PUSH_NONE)
            fail_msg("pushed: %s", none[i]);
    }
}

static void test_classify_encrypted(void **state) {
    (void)state;
    char body[256];
    const char *enc[] = {
        MSG(OMEMO_OLD FALLBACK),
        MSG("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@x'><key rid='2'>k"
            "</key></keys></header><payload>cA==</payload></encrypted>" FALLBACK),
        MSG("<openpgp xmlns='urn:xmpp:openpgp:0'>BASE64</openpgp>" FALLBACK),
        MSG("<x xmlns='jabber:x:encrypted'>ARMOR</x><body>This message is encrypted.</body>"),
        MSG(OMEMO_OLD), /* no fallback at all */
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        assert_int_equal(classify(enc[i], body, sizeof body), TERN_PUSH_ENCRYPTED);
        assert_string_equal(body, ""); /* the fallback is never even read */
    }
}

static void test_classify_call(void **state) {
    (void)state;
    assert_int_equal(classify(MSG("<propose xmlns='urn:xmpp:jingle-message:0' id='c1'><description "
                                  "xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
                                  "<store xmlns='urn:xmpp:hints'/>"),
                              NULL, 0),
                     TERN_PUSH_CALL);
    /* A call wins over a body that comes with it. */
    assert_int_equal(
        classify(MSG("<propose xmlns='urn:xmpp:jingle-message:0' id='c1'/><body>call</body>"), NULL,
                 0),
        TERN_PUSH_CALL);
}

/* ---- summaries and notifications ---------------------------------------------- */

static struct tern_push_summary summarise(const char *const *stanzas, size_t n) {
    struct tern_push_summary sum = {0};
    for (size_t i = 0; i < n; i++) {
        struct tern_xml *x = parse(stanzas[i]);
        struct tern_push_item it;
        P->classify(x, &it);
        tern_push_summary_add(&sum, &it);
        tern_xml_unref(&x);
    }
    return sum;
}

/* The single value of field var of the notification's summary form, or NULL (caller frees). */
static char *field(const struct tern_xml *notif, const char *var) {
    struct tern_xml *x = tern_xml_child(notif, "jabber:x:data", "x");
    assert_non_null(x);
    for (struct tern_xml *f = tern_xml_child(x, NULL, "field"); f;
         f = tern_xml_next(f, NULL, "field")) {
        if (strcmp(tern_xml_attr(f, "var"), var) == 0) {
            struct tern_xml *v = tern_xml_child(f, NULL, "value");
            assert_non_null(v);
            assert_null(tern_xml_next(v, NULL, "value"));
            return tern_xml_text(v);
        }
    }
    return NULL;
}

static void assert_field(const struct tern_xml *n, const char *var, const char *want) {
    char *got = field(n, var);
    if (!want) {
        if (got)
            fail_msg("field %s present: '%s'", var, got);
        return;
    }
    if (!got)
        fail_msg("field %s missing", var);
    assert_string_equal(got, want);
    free(got);
}

static const struct tern_push_content PRIVATE = {0, 0, "New message", 1};
static const struct tern_push_content OPEN = {1, 1, "New message", 1};

static void test_build_shape_and_privacy(void **state) {
    (void)state;
    const char *in[] = {MSG("<body>first</body>"), MSG("<body>second secret</body>")};
    struct tern_push_summary sum = summarise(in, 2);
    assert_int_equal(sum.count, 2);

    struct tern_xml *n = P->build(&sum, &PRIVATE);
    assert_string_equal(n->name, "notification");
    assert_string_equal(n->ns, TERN_NS_PUSH);
    struct tern_xml *x = tern_xml_child(n, "jabber:x:data", "x");
    assert_string_equal(tern_xml_attr(x, "type"), "submit");
    assert_field(n, "FORM_TYPE", TERN_NS_PUSH_SUMMARY);
    assert_field(n, "message-count", "2");
    assert_field(n, "last-message-body", "New message");
    assert_field(n, "last-message-sender", NULL);
    assert_null(tern_xml_child(n, TERN_NS_PUSH_PRIO, "priority"));
    tern_xml_unref(&n);

    n = P->build(&sum, &OPEN);
    assert_field(n, "last-message-body", "second secret");
    assert_field(n, "last-message-sender", "bob@example.org"); /* bare: no device */
    tern_xml_unref(&n);

    /* A user who turned the count off (include-message-count) gets none. */
    struct tern_push_content no_count = OPEN;
    no_count.include_count = 0;
    n = P->build(&sum, &no_count);
    assert_field(n, "message-count", NULL);
    assert_field(n, "last-message-body", "second secret");
    tern_xml_unref(&n);
    tern_push_summary_clear(&sum);
}

static void test_build_encrypted_never_shows_fallback(void **state) {
    (void)state;
    /* The newest decides: a plain message, then an encrypted one. */
    const char *in[] = {MSG("<body>plain</body>"), MSG(OMEMO_OLD FALLBACK)};
    struct tern_push_summary sum = summarise(in, 2);
    assert_int_equal(sum.last, TERN_PUSH_ENCRYPTED);
    assert_null(sum.body);
    struct tern_xml *n = P->build(&sum, &OPEN);
    assert_field(n, "last-message-body", "New message");
    assert_field(n, "last-message-sender", "bob@example.org");
    tern_xml_unref(&n);
    tern_push_summary_clear(&sum);
}

static void test_build_call_is_urgent(void **state) {
    (void)state;
    const char *in[] = {MSG("<body>hi</body>"),
                        MSG("<propose xmlns='urn:xmpp:jingle-message:0' id='c'/>")};
    struct tern_push_summary sum = summarise(in, 2);
    assert_true(sum.urgent);
    struct tern_xml *n = P->build(&sum, &OPEN);
    assert_field(n, "last-message-body", "New message"); /* a call has no text */
    struct tern_xml *prio = tern_xml_child(n, TERN_NS_PUSH_PRIO, "priority");
    assert_non_null(prio);
    char *t = tern_xml_text(prio);
    assert_string_equal(t, "high");
    free(t);
    tern_xml_unref(&n);
    tern_push_summary_clear(&sum);
}

static void test_unimportant_does_not_count(void **state) {
    (void)state;
    const char *in[] = {MSG("<body>text</body>"),
                        MSG("<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
                        MSG("<received xmlns='urn:xmpp:receipts' id='1'/>")};
    struct tern_push_summary sum = summarise(in, 3);
    assert_int_equal(sum.count, 1);
    assert_int_equal(sum.last, TERN_PUSH_MESSAGE);
    assert_string_equal(sum.body, "text");
    /* No placeholder configured: no body field at all. */
    struct tern_push_content none = {0, 0, "", 1};
    struct tern_xml *n = P->build(&sum, &none);
    assert_field(n, "last-message-body", NULL);
    tern_xml_unref(&n);
    tern_push_summary_clear(&sum);
}

static void test_body_cut_on_utf8_boundary(void **state) {
    (void)state;
    /* 'a' then two-byte 'é's: byte TERN_PUSH_BODY_MAX (even) is the second
     * byte of one, so the cut must step back to just before it. */
    size_t pairs = TERN_PUSH_BODY_MAX / 2 + 100;
    char *text = malloc(2 * pairs + 2);
    text[0] = 'a';
    for (size_t i = 0; i < pairs; i++) {
        text[1 + 2 * i] = (char)0xC3;
        text[2 + 2 * i] = (char)0xA9;
    }
    text[1 + 2 * pairs] = '\0';
    struct tern_push_item it = {.cls = TERN_PUSH_MESSAGE, .body = text, .body_len = strlen(text)};
    struct tern_push_summary sum = {0};
    tern_push_summary_add(&sum, &it);
    size_t len = strlen(sum.body);
    assert_int_equal(len, TERN_PUSH_BODY_MAX - 1);
    assert_int_equal((unsigned char)sum.body[len - 1], 0xA9); /* ends on a whole character */
    assert_memory_equal(sum.body, text, len);
    /* A copy is deep. */
    struct tern_push_summary copy;
    tern_push_summary_copy(&copy, &sum);
    assert_ptr_not_equal(copy.body, sum.body);
    assert_string_equal(copy.body, sum.body);
    tern_push_summary_clear(&copy);
    tern_push_summary_clear(&sum);
    assert_null(sum.body);
    assert_int_equal(sum.count, 0);
    free(text);
}

static void test_select(void **state) {
    (void)state;
    struct tern_push_summary plain = {.count = 1, .last = TERN_PUSH_MESSAGE};
    struct tern_push_summary call = {.count = 1, .urgent = 1, .last = TERN_PUSH_CALL};
    enum tern_push_trigger S = TERN_PUSH_T_SESSION, O = TERN_PUSH_T_OFFLINE;
    /* The session's own device, always. */
    assert_true(P->select(S, TERN_PUSH_R_OWN, &plain));
    /* Offline: devices without a session. */
    assert_true(P->select(O, TERN_PUSH_R_UNBOUND, &plain));
    assert_false(P->select(O, TERN_PUSH_R_HIBERNATED, &plain));
    assert_false(P->select(S, TERN_PUSH_R_UNBOUND, &plain));
    assert_false(P->select(S, TERN_PUSH_R_HIBERNATED, &plain));
    /* A call: every device that cannot hear it by itself. */
    assert_true(P->select(S, TERN_PUSH_R_UNBOUND, &call));
    assert_true(P->select(S, TERN_PUSH_R_HIBERNATED, &call));
    assert_true(P->select(O, TERN_PUSH_R_HIBERNATED, &call));
    /* Never a connected device. */
    assert_false(P->select(S, TERN_PUSH_R_LIVE, &plain));
    assert_false(P->select(S, TERN_PUSH_R_LIVE, &call));
    assert_false(P->select(O, TERN_PUSH_R_LIVE, &call));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_body),
        cmocka_unit_test(test_classify_nothing_for_a_person),
        cmocka_unit_test(test_classify_encrypted),
        cmocka_unit_test(test_classify_call),
        cmocka_unit_test(test_build_shape_and_privacy),
        cmocka_unit_test(test_build_encrypted_never_shows_fallback),
        cmocka_unit_test(test_build_call_is_urgent),
        cmocka_unit_test(test_unimportant_does_not_count),
        cmocka_unit_test(test_body_cut_on_utf8_boundary),
        cmocka_unit_test(test_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
