/*
 * The default push policy: what deserves a notification and what the
 * notification says (push_policy.h). Nothing here touches the network, the
 * store or a session, so all of it is unit-tested (tests/unit/mod/push_policy.c).
 */
#include "mod/push_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xml/xml.h"

#define NS_JMI       "urn:xmpp:jingle-message:0"      /* XEP-0353 */
#define NS_OMEMO_OLD "eu.siacs.conversations.axolotl" /* XEP-0384 before 0.4 */
#define NS_OMEMO     "urn:xmpp:omemo:2"               /* XEP-0384 */
#define NS_OX        "urn:xmpp:openpgp:0"             /* XEP-0373 */
#define NS_PGP       "jabber:x:encrypted"             /* XEP-0027 */
#define NS_DATA      "jabber:x:data"                  /* XEP-0004 */

/* The first run of text directly inside el (the parser merges adjacent runs). */
static const struct tern_xml *first_text(const struct tern_xml *el) {
    for (const struct tern_xml *n = el->children; n; n = n->next)
        if (n->kind == TERN_XML_TEXT)
            return n;
    return NULL;
}

static int blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/*
 * An OMEMO element with a <payload/> carries a message; one without is a key
 * transport element (XEP-0384 §7.3 / legacy §4.6) that no person reads.
 */
static int omemo_message(const struct tern_xml *m, const char *ns) {
    const struct tern_xml *enc = tern_xml_child(m, ns, "encrypted");
    return enc && tern_xml_child(enc, ns, "payload") != NULL;
}

static enum tern_push_class classify(const struct tern_xml *st, struct tern_push_item *out) {
    memset(out, 0, sizeof *out);
    if (strcmp(st->name, "message") != 0)
        return TERN_PUSH_NONE;
    const char *type = tern_xml_attr(st, "type");
    /* Errors are for software; groupchat has no room here to mention anyone
     * in; headlines are announcements, not conversations. */
    if (type && (!strcmp(type, "error") || !strcmp(type, "groupchat") || !strcmp(type, "headline")))
        return TERN_PUSH_NONE;
    out->sender = tern_xml_attr(st, "from");
    if (tern_xml_child(st, NS_JMI, "propose"))
        out->cls = TERN_PUSH_CALL;
    else if (omemo_message(st, NS_OMEMO) || omemo_message(st, NS_OMEMO_OLD) ||
             tern_xml_child(st, NS_OX, "openpgp") || tern_xml_child(st, NS_PGP, "x"))
        out->cls = TERN_PUSH_ENCRYPTED; /* any <body/> is a fallback: never read it */
    else {
        const struct tern_xml *body = tern_xml_child(st, NULL, "body");
        const struct tern_xml *text = body ? first_text(body) : NULL;
        if (text && !blank(text->text, text->text_len)) {
            out->cls = TERN_PUSH_MESSAGE;
            out->body = text->text;
            out->body_len = text->text_len;
        }
    }
    if (out->cls == TERN_PUSH_NONE)
        out->sender = NULL;
    return out->cls;
}

static int select_reg(enum tern_push_trigger trig, enum tern_push_relation rel,
                      const struct tern_push_summary *sum) {
    switch (rel) {
    case TERN_PUSH_R_OWN: return 1;
    case TERN_PUSH_R_UNBOUND: return trig == TERN_PUSH_T_OFFLINE || sum->urgent;
    case TERN_PUSH_R_HIBERNATED: return sum->urgent;
    case TERN_PUSH_R_LIVE: return 0; /* a connected device hears it itself */
    }
    return 0;
}

static void add_field(struct tern_xml *x, const char *var, const char *type, const char *value) {
    struct tern_xml *f = tern_xml_add_el(x, NULL, "field");
    tern_xml_set_attr(f, "var", var);
    if (type)
        tern_xml_set_attr(f, "type", type);
    tern_xml_add_text(tern_xml_add_el(f, NULL, "value"), value, strlen(value));
}

static struct tern_xml *build(const struct tern_push_summary *sum,
                              const struct tern_push_content *content) {
    struct tern_xml *n = tern_xml_new(TERN_NS_PUSH, "notification");
    struct tern_xml *x = tern_xml_add_el(n, NS_DATA, "x");
    tern_xml_set_attr(x, "type", "submit");
    add_field(x, "FORM_TYPE", "hidden", TERN_NS_PUSH_SUMMARY);
    if (content->include_count) {
        char count[16];
        snprintf(count, sizeof count, "%u", sum->count);
        add_field(x, "message-count", NULL, count);
    }
    if (content->include_sender && sum->sender)
        add_field(x, "last-message-sender", NULL, sum->sender);
    /* The real text only for a plain message and only if allowed: the
     * fallback body of an encrypted message says nothing true. */
    if (sum->last == TERN_PUSH_MESSAGE && sum->body && content->include_body)
        add_field(x, "last-message-body", NULL, sum->body);
    else if (sum->last != TERN_PUSH_NONE && content->placeholder && *content->placeholder)
        add_field(x, "last-message-body", NULL, content->placeholder);
    if (sum->urgent) {
        struct tern_xml *p = tern_xml_add_el(n, TERN_NS_PUSH_PRIO, "priority");
        tern_xml_add_text(p, "high", 4);
    }
    return n;
}

const struct tern_push_policy tern_push_default_policy = {
    .name = "default",
    .classify = classify,
    .select = select_reg,
    .build = build,
};

/* ---- summaries ------------------------------------------------------------------ */

/* A copy of s[0..len) cut to at most max bytes without splitting a UTF-8 sequence. */
static char *cut_utf8(const char *s, size_t len, size_t max) {
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    return tern_strndup(s, len);
}

void tern_push_summary_add(struct tern_push_summary *sum, const struct tern_push_item *item) {
    if (item->cls == TERN_PUSH_NONE)
        return;
    sum->count++;
    if (item->cls == TERN_PUSH_CALL)
        sum->urgent = 1;
    sum->last = item->cls;
    free(sum->sender);
    sum->sender = NULL;
    if (item->sender) {
        /* The bare JID: which device of the sender wrote is nobody's business. */
        const char *slash = strchr(item->sender, '/');
        size_t len = slash ? (size_t)(slash - item->sender) : strlen(item->sender);
        sum->sender = tern_strndup(item->sender, len);
    }
    free(sum->body);
    sum->body = NULL;
    if (item->cls == TERN_PUSH_MESSAGE && item->body)
        sum->body = cut_utf8(item->body, item->body_len, TERN_PUSH_BODY_MAX);
}

void tern_push_summary_clear(struct tern_push_summary *sum) {
    free(sum->sender);
    free(sum->body);
    memset(sum, 0, sizeof *sum);
}

void tern_push_summary_copy(struct tern_push_summary *dst, const struct tern_push_summary *src) {
    *dst = *src;
    dst->sender = src->sender ? tern_strdup(src->sender) : NULL;
    dst->body = src->body ? tern_strdup(src->body) : NULL;
}
