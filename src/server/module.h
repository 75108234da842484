/*
 * Modules: protocol features (roster, presence, offline storage, disco ...)
 * plug into the server here, without the router or c2s knowing them.
 *
 * A module is a static struct tern_module listed in src/mod/modules.c. It
 * may answer IQs in given namespaces and subscribe to events. Handlers run
 * on the loop thread of the shard concerned and must never block: storage
 * goes through tern_store_submit() with a completion callback.
 * See docs/internals/modules.md.
 */
#ifndef TERN_SERVER_MODULE_H
#define TERN_SERVER_MODULE_H

#include <stddef.h>

struct tern_server;
struct tern_shard;
struct tern_c2s;
struct tern_jid;
struct tern_xml;

/** What a handler did with a stanza (STYLE.md §5). */
enum tern_hook_result {
    TERN_PASS = 0,    /* not mine: the next handler (or the default) gets it */
    TERN_HANDLED = 1, /* consumed: answered now or will be answered later */
};

/** Events modules can subscribe to. */
enum tern_event {
    TERN_EV_SESSION_BOUND,   /* session bound a resource; jid = full JID */
    TERN_EV_SESSION_CLOSING, /* a bound session is ending (still in the directory) */
    TERN_EV_AVAILABLE,       /* session sent initial presence; stanza = that presence */
    TERN_EV_UNAVAILABLE,     /* session became unavailable (presence or end of session) */
    TERN_EV_OFFLINE_STORED,  /* stanza stored offline for jid (bare), durably */
    TERN_EV_DELIVERED,       /* stanza written to session */
    TERN_EV_ACCOUNT_DELETED, /* jid (bare) no longer exists */
    TERN_EV_SM_HIBERNATED,   /* session's transport died; it waits for resumption (queue on it) */
    TERN_EV_SM_QUEUED,       /* stanza queued for a hibernated session */
    TERN_EV_SM_ACK_OVERDUE,  /* session did not acknowledge within sm.ack_timeout */
    TERN_EV_SM_RESUMED,      /* session resumed on a new connection */
    TERN_EV_SM_EXPIRED,      /* hibernated session ended unresumed (before its hand-off) */
    TERN_EV__COUNT
};

/** Arguments of an event; pointers are borrowed for the call only. */
struct tern_event_args {
    enum tern_event ev;            /* which event */
    struct tern_shard *shard;      /* shard the event happens on */
    struct tern_c2s *session;      /* the session concerned, or NULL */
    const struct tern_jid *jid;    /* the account or resource concerned */
    const struct tern_xml *stanza; /* the stanza concerned, or NULL */
};

typedef void (*tern_event_fn)(const struct tern_event_args *args);

/** Where an IQ was addressed. */
enum tern_iq_target {
    TERN_IQ_TO_SERVER = 1,  /* to the domain, or no 'to' */
    TERN_IQ_TO_ACCOUNT = 2, /* to a local bare JID (the sender's own or another's) */
};

/** An IQ get/set for a module. */
struct tern_iq_ctx {
    struct tern_shard *shard;    /* sender's shard */
    struct tern_c2s *session;    /* sender's session, or NULL if not a local client */
    const struct tern_jid *from; /* sender (full JID, stamped) */
    const struct tern_jid *to;   /* addressee (the domain for TERN_IQ_TO_SERVER) */
    struct tern_xml *iq;         /* the request (borrowed; tern_xml_ref to keep it) */
    struct tern_xml *payload;    /* its single child element */
    enum tern_iq_target target;  /* where it was addressed */
};

/**
 * Answers IQ get/set whose payload is in the registered namespace. Returns
 * TERN_HANDLED after replying (now with tern_module_reply(), or later) or
 * TERN_PASS to let the next module or the default (service-unavailable) act.
 */
typedef enum tern_hook_result (*tern_iq_fn)(struct tern_iq_ctx *ctx);

struct tern_iq_def {
    const char *ns;   /* payload namespace */
    unsigned targets; /* bitmask of enum tern_iq_target */
    tern_iq_fn fn;    /* handler */
};

struct tern_event_def {
    enum tern_event ev; /* event */
    tern_event_fn fn;   /* subscriber */
};

struct tern_module {
    const char *name;                      /* for logs */
    int (*init)(struct tern_server *srv);  /* once at start, may be NULL; non-zero aborts start */
    void (*fini)(struct tern_server *srv); /* at shutdown, may be NULL */
    const struct tern_iq_def *iqs;         /* terminated by {NULL}; may be NULL */
    const struct tern_event_def *events;   /* terminated by {0, NULL}; may be NULL */
    const char *const *server_features;    /* disco#info features of the domain, NULL-terminated */
    const char *const *account_features;   /* disco#info features of an account */
    const char *const *stream_features;    /* XML added to <stream:features/> once authenticated */
};

/** The compiled-in modules, NULL-terminated (src/mod/modules.c). */
extern const struct tern_module *const tern_modules[];

/** Run every module's init; returns the first failure. */
int tern_modules_init(struct tern_server *srv);
void tern_modules_fini(struct tern_server *srv);

/** Offer an IQ to the modules registered for its namespace and target. */
enum tern_hook_result tern_modules_iq(struct tern_iq_ctx *ctx);

/** Tell every subscriber of args->ev, in module order. */
void tern_modules_fire(const struct tern_event_args *args);

/** Send a reply (result or error, refs taken) to the sender of ctx's IQ. */
void tern_module_reply(struct tern_iq_ctx *ctx, struct tern_xml *reply_take);
/** The same, later (after a store job): to requester (a full JID) on shard. */
void tern_module_reply_to(struct tern_shard *shard, const struct tern_jid *requester,
                          struct tern_xml *reply_take);

#endif
