/*
 * What the files of the push module (push.c: triggers and sessions;
 * push_publish.c: rounds, publishing, answers; push_enable.c: enable,
 * disable, content options; push_start.c: push.on_start) share. Not for
 * other modules: their interface is push.h. See docs/internals/push.md.
 */
#ifndef TERN_MOD_PUSH_INTERNAL_H
#define TERN_MOD_PUSH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mod/push_policy.h"
#include "server/server.h"
#include "server/shard.h"
#include "store/store.h"

struct tern_config;
struct tern_event_args;
struct tern_iq_ctx;
struct tern_xml;

#define TERN__PUSH_NODE_MAX    1023 /* longest node name accepted, bytes */
#define TERN__PUSH_OPTIONS_MAX 8192 /* longest publish-options form kept, bytes serialized */

/** The policy in force (push.c; tern_push_set_policy()). */
extern const struct tern_push_policy *tern__push_policy;

static inline const struct tern_config *tern__push_cfg(const struct tern_shard *shard) {
    return shard->server->cfg;
}

/* ---- push_publish.c ---- */

/**
 * One round: a store job reads the user's registrations (and what the
 * notification needs), then its completion asks the policy about each and
 * publishes. Made by tern__push_round_new(), filled in, submitted.
 */
struct round {
    struct tern_store_job job;     /* store linkage */
    struct tern_shard *shard;      /* where to publish */
    enum tern_push_trigger trig;   /* session or offline */
    int lookup;                    /* only find whether own has a registration (hibernation) */
    int wake;                      /* push.wake_before_expiry: only own's registration, no reset */
    char *user;                    /* localpart */
    char *bare;                    /* user@domain */
    char *own;                     /* TERN_PUSH_T_SESSION: the session's resource */
    uint64_t own_uid;              /* and its uid */
    struct tern_push_summary sum;  /* what to say */
    struct tern_xml *call;         /* the newest call invitation among them (a reference) */
    char *told;                    /* TERN_PUSH_T_OFFLINE: the resource already told about it */
    struct tern_push_reg *regs;    /* read */
    size_t nregs;                  /* entries in regs */
    size_t offline;                /* TERN_PUSH_T_OFFLINE: messages held offline */
    struct tern_push_options opts; /* read: the user's content options */
    int has_opts;                  /* the user has set some */
};

/** A round for user (localpart) / bare; the caller sets what the trigger needs. */
struct round *tern__push_round_new(struct tern_shard *shard, enum tern_push_trigger trig,
                                   const char *user, const char *bare);
/** Submit r; it is freed when done (or now, if the store is closed). */
void tern__push_round_submit(struct round *r);
/** Store thread: the user's content options into *opts; *has 0 (and 0 returned) if none. */
int tern__push_options_read(struct tern_store_backend *b, const char *user,
                            struct tern_push_options *opts, int *has);
/** What a notification may reveal: push.include_* narrowed by opts (NULL: none set). */
struct tern_push_content tern__push_content(const struct tern_config *cfg,
                                            const struct tern_push_options *opts);
/** The component that serves jid's domain is configured but not connected. */
int tern__push_component_absent(const char *jid);
/** Publish sum to reg of user (bounded, tracked, answers counted); opts as above. */
void tern__push_publish(struct tern_shard *shard, const char *user, const struct tern_push_reg *reg,
                        const struct tern_push_summary *sum, const struct tern_push_options *opts);
/**
 * Stanzas remembered by identity (holding a reference, so the address stays
 * unique) for a while, each with a string: the device told about a
 * handed-off message (push.c), the registrations told about a call
 * (push_publish.c). At most max entries; the oldest go first by time.
 */
struct tern__push_memo_entry {
    struct tern__push_memo_entry *next; /* list link */
    struct tern_xml *stanza;            /* a reference */
    char *key;                          /* what is remembered with it */
    uint64_t until;                     /* loop ms after which it is forgotten */
};
struct tern__push_memo {
    struct tern__push_memo_entry *head; /* newest first */
    size_t n;                           /* entries */
};
/** Forget the entries due at now (all of them if all). */
void tern__push_memo_prune(struct tern__push_memo *m, uint64_t now, int all);
/** Remember (stanza, key_take) until then; 0, or -1 (key freed) if max are held. */
int tern__push_memo_add(struct tern__push_memo *m, const struct tern_xml *stanza, char *key_take,
                        uint64_t until, size_t max);
/** Is (stanza, key) remembered? */
int tern__push_memo_has(const struct tern__push_memo *m, const struct tern_xml *stanza,
                        const char *key);
/** Forget the newest entry of stanza and hand back its key (free it), or NULL. */
char *tern__push_memo_take(struct tern__push_memo *m, const struct tern_xml *stanza);

void tern__push_publish_init(void);
void tern__push_publish_fini(void);

/* ---- push.c (sessions) ---- */

/** A lookup round found whether the hibernated session r->own_uid has a registration. */
void tern__push_hibernation_found(struct round *r, int has_reg);
/** A session round published (own: to the session's own registration). */
void tern__push_pushed_session(struct round *r, int own);
/** An enable (1) or disable (-1: not known any more) from session uid. */
void tern__push_session_has_reg(uint64_t uid, int has);

/* ---- push_enable.c ---- */

enum tern_hook_result tern__push_on_iq(struct tern_iq_ctx *ctx);
enum tern_hook_result tern__push_on_disco_info(struct tern_iq_ctx *ctx);

/* ---- push_start.c ---- */

/** Read (and clear) the marks of the last shutdown; publish when push.on_start. */
void tern__push_start(struct tern_server *srv);
void tern__push_start_fini(void);
/** At shutdown: mark the registrations of a's session (push.on_start). */
void tern__push_mark_at_shutdown(const struct tern_event_args *a);

#endif
