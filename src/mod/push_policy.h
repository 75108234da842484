/*
 * The push policy (XEP-0357 server role): which stanzas deserve a
 * notification, to which of a user's registrations, how urgent, and what
 * the notification says. The push module (push.c) owns the when (triggers,
 * batching, publishing, errors); a policy owns these decisions, behind a
 * small table of function pointers so that a deployment can swap them
 * without touching the module. See docs/internals/push.md.
 */
#ifndef TERN_MOD_PUSH_POLICY_H
#define TERN_MOD_PUSH_POLICY_H

#include <stddef.h>

struct tern_xml;

#define TERN_NS_PUSH         "urn:xmpp:push:0"
#define TERN_NS_PUSH_SUMMARY "urn:xmpp:push:summary"
#define TERN_NS_PUSH_OPTIONS "urn:xmpp:push:options"  /* per-user content options (ours) */
#define TERN_NS_PUSH_PRIO    "tigase:push:priority:0" /* Tigase's <priority/> extension */

/** Longest message text a notification carries, in bytes (cut on a UTF-8 boundary). */
#define TERN_PUSH_BODY_MAX 1024

/** What one stanza is to push. Ordered: a later class is more important. */
enum tern_push_class {
    TERN_PUSH_NONE = 0,  /* nothing a person would miss (chat state, receipt ...): no push */
    TERN_PUSH_MESSAGE,   /* a message with text */
    TERN_PUSH_ENCRYPTED, /* OMEMO, OX or legacy PGP: its body is a fallback, never shown */
    TERN_PUSH_CALL,      /* a call invitation (XEP-0353 <propose/>): pushed at once, urgent */
};

/** One stanza as classify sees it. Pointers borrow from the stanza. */
struct tern_push_item {
    enum tern_push_class cls; /* what it is */
    const char *sender;       /* its 'from', or NULL */
    const char *body;         /* its text for TERN_PUSH_MESSAGE (body_len bytes), else NULL */
    size_t body_len;          /* bytes of body */
};

/** What one notification summarises. Owns its strings; zero-initialise before use. */
struct tern_push_summary {
    unsigned count;            /* important stanzas (message-count) */
    int urgent;                /* a call invitation among them */
    enum tern_push_class last; /* class of the newest */
    char *sender;              /* bare JID of the newest's sender, or NULL */
    char *body;                /* text of the newest if a TERN_PUSH_MESSAGE, cut; else NULL */
};

/** What a notification may reveal: the operator's settings narrowed by the user's. */
struct tern_push_content {
    int include_sender;      /* last-message-sender */
    int include_body;        /* the real text in last-message-body */
    const char *placeholder; /* last-message-body otherwise (push.body_placeholder) */
    int include_count;       /* message-count */
};

/** Why a notification is being considered. */
enum tern_push_trigger {
    TERN_PUSH_T_SESSION, /* a session's messages wait: hibernated, or not acknowledged in time */
    TERN_PUSH_T_OFFLINE, /* messages were stored offline */
};

/** Where a registration's device stands, relative to the trigger. */
enum tern_push_relation {
    TERN_PUSH_R_OWN,        /* it is the registration of the session that triggered */
    TERN_PUSH_R_UNBOUND,    /* no session of its resource is bound */
    TERN_PUSH_R_HIBERNATED, /* another session of the user, hibernated, has its resource */
    TERN_PUSH_R_LIVE,       /* another session of the user, connected, has its resource */
};

/** A policy. Every function is pure (no I/O, no state) and runs on a loop thread. */
struct tern_push_policy {
    const char *name; /* for logs */
    /** Classify stanza (borrowed) into *out; returns out->cls. */
    enum tern_push_class (*classify)(const struct tern_xml *stanza, struct tern_push_item *out);
    /** Should a registration in relation rel get a notification summarising sum? */
    int (*select)(enum tern_push_trigger trig, enum tern_push_relation rel,
                  const struct tern_push_summary *sum);
    /**
     * The <notification xmlns='urn:xmpp:push:0'/> for sum (sum->count > 0):
     * a new root (refs 1) that the caller puts in a pubsub <item/>.
     */
    struct tern_xml *(*build)(const struct tern_push_summary *sum,
                              const struct tern_push_content *content);
};

/**
 * The default policy:
 * - classify: message types error, groupchat and headline are NONE; a
 *   <propose xmlns='urn:xmpp:jingle-message:0'/> is CALL; an OMEMO
 *   (eu.siacs.conversations.axolotl, urn:xmpp:omemo:2; a key-transport
 *   element without <payload/> does not count), OX (urn:xmpp:openpgp:0) or
 *   PGP (jabber:x:encrypted) element is ENCRYPTED; a non-empty <body/> is
 *   MESSAGE; anything else (chat states, receipts, markers alone) is NONE.
 * - select: always OWN; UNBOUND for offline triggers; UNBOUND and
 *   HIBERNATED for session triggers only when urgent; never LIVE.
 * - build: a urn:xmpp:push:summary form with message-count if content
 *   allows, the sender if content allows, last-message-body (the real text only for a plain
 *   message when content allows, else the placeholder); urgent adds
 *   <priority xmlns='tigase:push:priority:0'>high</priority>.
 */
extern const struct tern_push_policy tern_push_default_policy;

/** Fold one important item into sum (count, urgency, newest sender and text). */
void tern_push_summary_add(struct tern_push_summary *sum, const struct tern_push_item *item);
/** Free what sum owns and zero it. */
void tern_push_summary_clear(struct tern_push_summary *sum);
/** Deep copy of src into dst (dst is overwritten, not freed). */
void tern_push_summary_copy(struct tern_push_summary *dst, const struct tern_push_summary *src);

#endif
