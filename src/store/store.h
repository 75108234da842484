/* Storage: one interface of typed operations; backends below it. */
#ifndef TERN_STORE_STORE_H
#define TERN_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "xmpp/scram.h"

struct tern_config;
struct tern_store_backend;

/** Subscription states of a roster item (RFC 6121 §2.1.2.5). */
enum tern_sub {
    TERN_SUB_NONE = 0,
    TERN_SUB_TO = 1,   /* the user receives the contact's presence */
    TERN_SUB_FROM = 2, /* the contact receives the user's presence */
    TERN_SUB_BOTH = 3, /* TO | FROM */
};

/**
 * One roster item of a user, with the server-side subscription state of
 * RFC 6121 Appendix A. Strings are owned by the item.
 */
struct tern_roster_item {
    char *jid;         /* contact bare JID, prepared */
    char *name;        /* handle, or NULL */
    enum tern_sub sub; /* subscription */
    int ask;           /* Pending Out: the user asked to subscribe, no answer yet */
    int pending_in;    /* Pending In: the contact asked to subscribe, not yet answered */
    int approved;      /* subscription pre-approved by the user (RFC 6121 §3.4) */
    int hidden;        /* kept only to remember Pending In; not part of the client's roster */
    char **groups;     /* group names */
    size_t ngroups;    /* entries in groups */
};

/** A user's roster and its version (RFC 6121 §2.6: bumped on every change). */
struct tern_roster {
    struct tern_roster_item *items; /* sorted by jid */
    size_t n;                       /* entries in items */
    uint64_t version;               /* 0 for a user whose roster never changed */
};

/** One message held in offline storage (XEP-0160). */
struct tern_offline_msg {
    int64_t id;    /* increasing per database */
    int64_t stamp; /* when it was stored, Unix time in milliseconds */
    char *xml;     /* the stanza as serialized (jabber:client default namespace), NUL-terminated */
    size_t len;    /* bytes in xml */
};

/**
 * One push registration (XEP-0357 §5): where the server publishes
 * notifications for one device of a user. Strings are owned by the struct.
 */
struct tern_push_reg {
    char *jid;          /* the app server's XMPP Push Service, a prepared JID */
    char *node;         /* the node provisioned there (never NULL) */
    char *options;      /* serialized publish-options <x xmlns='jabber:x:data'/>, or NULL */
    char *resource;     /* resource of the session that enabled it, or NULL */
    unsigned flags;     /* TERN_PUSH_F_* */
    int64_t created_at; /* when it was (last) enabled, Unix time in milliseconds */
    int errors;         /* consecutive publish errors counted against it */
};

/** Its session was alive at shutdown (push.on_start; push_mark). Bits 1 and 2 are retired. */
#define TERN_PUSH_F_WAKE 4u

/**
 * What a user lets notifications carry (urn:xmpp:push:options), one set per
 * user across their registrations. Each is 0 or 1; a user who never set
 * them has none stored (every one is then allowed, within the server's own
 * push settings).
 */
struct tern_push_options {
    int senders; /* include-senders: last-message-sender */
    int count;   /* include-message-count: message-count */
    int bodies;  /* include-message-bodies: the real last-message-body */
};

/** Free what item owns (not item itself, which usually sits in an array) and zero it. */
void tern_roster_item_free(struct tern_roster_item *item);
/** Free every item and the array of a roster from roster_get, and zero it. */
void tern_roster_free(struct tern_roster *roster);
/** Free an array of n messages from offline_get (NULL is fine). */
void tern_offline_msgs_free(struct tern_offline_msg *msgs, size_t n);
/** Free an array of n registrations from push_get / push_put (NULL is fine). */
void tern_push_regs_free(struct tern_push_reg *regs, size_t n);

/**
 * A backend's synchronous operations. They block, so ternd only ever calls
 * them on the store thread; ternctl (a short-lived command) calls them
 * directly. Every operation returns 0 or a negative tern_err:
 * TERN_E_NOTFOUND, TERN_E_EXISTS, TERN_E_BUSY (locked too long), TERN_E_IO.
 * Usernames are prepared localparts.
 */
struct tern_store_backend_ops {
    const char *name; /* "sqlite" */
    /** Group commit: begin/commit/rollback a transaction around many operations. */
    int (*begin)(struct tern_store_backend *b);
    int (*commit)(struct tern_store_backend *b);
    int (*rollback)(struct tern_store_backend *b);
    /**
     * Savepoints isolate one operation inside a group transaction (one level,
     * no nesting). Each savepoint ends with exactly one of release (keep the
     * work) or rollback_to (undo the work; the savepoint is gone afterwards).
     */
    int (*savepoint)(struct tern_store_backend *b);
    int (*release)(struct tern_store_backend *b);
    int (*rollback_to)(struct tern_store_backend *b);

    /* accounts */
    int (*account_create)(struct tern_store_backend *b, const char *user,
                          const struct tern_scram_creds *creds);
    int (*account_get)(struct tern_store_backend *b, const char *user,
                       struct tern_scram_creds *creds);
    int (*account_set)(struct tern_store_backend *b, const char *user,
                       const struct tern_scram_creds *creds);
    int (*account_delete)(struct tern_store_backend *b, const char *user);
    /** All usernames, sorted; *users is a malloc'd array of malloc'd strings. */
    int (*account_list)(struct tern_store_backend *b, char ***users, size_t *n);

    /*
     * roster (RFC 6121 §2); usernames are localparts, contacts bare JIDs.
     * Rosters and offline messages belong to an account: a write for a user
     * without one fails with TERN_E_NOTFOUND, and account_delete removes them.
     */
    /** The user's whole roster, hidden items included (the caller filters). */
    int (*roster_get)(struct tern_store_backend *b, const char *user, struct tern_roster *out);
    /** Insert or replace item (keyed by item->jid); bumps and returns the roster version. */
    int (*roster_put)(struct tern_store_backend *b, const char *user,
                      const struct tern_roster_item *item, uint64_t *version);
    /** Remove the item for contact (TERN_E_NOTFOUND if absent); bumps the version. */
    int (*roster_del)(struct tern_store_backend *b, const char *user, const char *contact,
                      uint64_t *version);
    /** Every user (localpart) whose roster has an item for contact, sorted. */
    int (*roster_holders)(struct tern_store_backend *b, const char *contact, char ***users,
                          size_t *n);
    /** Remove the user's whole roster (account deletion). */
    int (*roster_clear)(struct tern_store_backend *b, const char *user);

    /* offline storage (XEP-0160) */
    /**
     * Store a message for user unless the user already holds quota messages
     * (then TERN_E_LIMIT and nothing is stored). *id gets the new id.
     */
    int (*offline_put)(struct tern_store_backend *b, const char *user, const char *xml, size_t len,
                       int64_t stamp, int quota, int64_t *id);
    /** The user's messages, oldest first. */
    int (*offline_get)(struct tern_store_backend *b, const char *user,
                       struct tern_offline_msg **msgs, size_t *n);
    /** Delete the user's messages with id <= upto (those delivered). */
    int (*offline_del)(struct tern_store_backend *b, const char *user, int64_t upto);
    /** How many messages the user holds. */
    int (*offline_count)(struct tern_store_backend *b, const char *user, size_t *n);

    /*
     * push registrations (XEP-0357); keyed by (user, jid, node). They belong
     * to the account like rosters: account_delete removes them.
     */
    /**
     * Insert reg, or replace the registration with the same jid and node
     * (options, resource, flags and created_at are taken from reg; errors
     * start again at 0). Then, if max > 0 and the user holds more than max,
     * the oldest (by created_at, then insertion) are deleted and returned in
     * *evicted (oldest first; free with tern_push_regs_free; may be NULL if
     * the caller does not want them). All or nothing. TERN_E_INVAL for a
     * NULL jid or node.
     */
    int (*push_put)(struct tern_store_backend *b, const char *user, const struct tern_push_reg *reg,
                    int max, struct tern_push_reg **evicted, size_t *nevicted);
    /** The user's registrations, oldest first (none: *regs NULL, *n 0). */
    int (*push_get)(struct tern_store_backend *b, const char *user, struct tern_push_reg **regs,
                    size_t *n);
    /**
     * Delete the registration (jid, node); with node NULL every one of jid;
     * with jid NULL too every one of the user. *removed (may be NULL) gets
     * how many went; removing nothing is not an error.
     */
    int (*push_del)(struct tern_store_backend *b, const char *user, const char *jid,
                    const char *node, size_t *removed);
    /**
     * Count one more publish error against (jid, node); *errors gets the new
     * count. If it reaches max_errors (> 0) the registration is deleted in the
     * same operation. TERN_E_NOTFOUND if there is no such registration.
     */
    int (*push_error)(struct tern_store_backend *b, const char *user, const char *jid,
                      const char *node, int max_errors, int *errors);
    /** A publish succeeded: the error count of (jid, node) starts again at 0. */
    int (*push_ok)(struct tern_store_backend *b, const char *user, const char *jid,
                   const char *node);
    /**
     * push.on_start: set TERN_PUSH_F_WAKE on the user's registrations whose
     * resource is resource (a session of it is alive at shutdown); with user
     * NULL, clear the flag everywhere. A re-enable (push_put) replaces the
     * flags, and so clears it too.
     */
    int (*push_mark)(struct tern_store_backend *b, const char *user, const char *resource);
    /** The users with a registration marked by push_mark (free with tern_store_free_list). */
    int (*push_marked)(struct tern_store_backend *b, char ***users, size_t *n);
    /**
     * The user's content options; TERN_E_NOTFOUND if none are set. They are
     * deleted with the user's last registration, however it goes.
     */
    int (*push_options_get)(struct tern_store_backend *b, const char *user,
                            struct tern_push_options *opts);
    /** Set (replace) the user's content options. */
    int (*push_options_put)(struct tern_store_backend *b, const char *user,
                            const struct tern_push_options *opts);

    void (*close)(struct tern_store_backend *b);
};

/** A backend instance: ops plus the backend's own state after it. */
struct tern_store_backend {
    const struct tern_store_backend_ops *ops; /* the operations */
};

/**
 * Open the backend named in cfg (store_backend, store_path), creating the
 * schema if needed. On failure returns a negative tern_err and a message in err.
 */
int tern_store_backend_open(const struct tern_config *cfg, struct tern_store_backend **out,
                            char *err, size_t errlen);
/** Close and free; sets *b to NULL. */
void tern_store_backend_close(struct tern_store_backend **b);
/**
 * Delete the account user (localpart; bare is user@domain): remove bare from
 * every roster that holds it, then the account with its roster, offline
 * messages, push registrations and keys. Run it inside one transaction. On success *holders
 * (free with tern_store_free_list) are the users whose roster lost the
 * item and *versions (free()) their new roster versions, *n entries.
 * TERN_E_NOTFOUND for an unknown user.
 */
int tern_store_account_purge(struct tern_store_backend *b, const char *user, const char *bare,
                             char ***holders, uint64_t **versions, size_t *n);

/** Free an array returned by account_list. */
void tern_store_free_list(char **list, size_t n);

/* ---- The asynchronous front used by ternd ---------------------------------- */

struct tern_store;
struct tern_store_job;

/** Runs on the store thread with exclusive use of the backend. Returns 0 or tern_err. */
typedef int (*tern_store_run_fn)(struct tern_store_backend *b, struct tern_store_job *job);
/** Runs on the loop thread after run; err is run's result. The job is the caller's again. */
typedef void (*tern_store_done_fn)(struct tern_store_job *job, int err);

/**
 * A unit of work. Embed it in your own request struct (container_of style);
 * the store never allocates or frees jobs. run must not begin, commit or roll
 * back a transaction, nor use savepoints: the store does that around it.
 */
struct tern_store_job {
    tern_store_run_fn run;       /* store thread */
    tern_store_done_fn done;     /* loop thread */
    int write;                   /* non-zero: joins the group-commit transaction */
    int err;                     /* result of run, set by the store */
    struct tern_store_job *next; /* queue link, owned by the store */
};

/** The struct of type `type` whose member `field` is the job at ptr. */
#define tern_store_container(ptr, type, field)                                                     \
    ((type *)(void *)(((char *)(ptr)) - offsetof(type, field)))

/**
 * Start the store thread for backend (taken, also on failure: it is closed).
 * Completions are delivered on loop. The store keeps the loop alive (its
 * uv_async_t is referenced) only while jobs are in flight. Returns 0 or
 * TERN_E_IO.
 */
int tern_store_new(uv_loop_t *loop, struct tern_store_backend *backend_take,
                   struct tern_store **out);

/**
 * Queue a job; call it on the loop thread. Writes queued together are
 * committed in one transaction (each in its own savepoint, so one failure
 * does not undo the others); done runs only after the commit is durable. Returns TERN_E_CLOSED
 * after tern_store_close() began (or when s is NULL), in which case done is never called.
 * docs/internals/store.md says in which order jobs run.
 */
int tern_store_submit(struct tern_store *s, struct tern_store_job *job);

/**
 * Finish every queued job (their done callbacks run, on the caller's thread,
 * before this returns), stop the thread, close the backend and free s.
 * Blocks the caller until the queue is drained; call it at shutdown only, on
 * the loop thread (a done callback may call it). Sets *s to NULL; a done
 * callback that submits during close gets TERN_E_CLOSED.
 *
 * The uv_async_t handle inside s is released with uv_close(), so the loop
 * must run once more afterwards (e.g. uv_run(loop, UV_RUN_NOWAIT)) before
 * uv_loop_close(); the memory of s is freed in that close callback.
 */
void tern_store_close(struct tern_store **s);

/* ---- Typed asynchronous operations ------------------------------------------ */

/** Completion of tern_store_account_get: creds valid only during the call. */
typedef void (*tern_store_creds_fn)(void *ud, int err, const struct tern_scram_creds *creds);

/**
 * Look up a user's credentials off the loop; cb runs on the loop thread with
 * err 0 or TERN_E_NOTFOUND / TERN_E_IO. The caller must keep ud alive until cb.
 */
int tern_store_account_get(struct tern_store *s, const char *user, tern_store_creds_fn cb,
                           void *ud);

#endif
