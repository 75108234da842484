/*
 * Push notifications, server role (XEP-0357). A client enables a
 * registration (an app server's push service JID and node, with optional
 * publish options) for its account; the registration is stored with the
 * resource of the session that enabled it. When something a person would
 * want to know about cannot reach that device, the server publishes a
 * summary to the registration's node:
 *
 * - messages wait in a hibernated session's queue (batched for BATCH_MS);
 * - a live session leaves messages unacknowledged for push.ack_delay;
 * - a message was stored offline: at once, to the registrations whose
 *   resource has no session;
 * - a call invitation: at once, to every registration without a live
 *   session, also when another session of the account took the call.
 *
 * Which stanza counts, who gets it and what the notification says are the
 * policy's (push_policy.h); this file owns when, the store, publishing and
 * the app server's answers. Publishing never blocks routing: registrations
 * are read by a store job, publishes are tracked IQs (iqtrack.c), at most
 * push.max_queue in flight.
 *
 * State (session trackers, counters) is per process and
 * only touched from loop threads; like iqtrack.c, whose requests it makes,
 * it assumes one shard today (docs/internals/push.md).
 */
#include "mod/push.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "mod/disco.h"
#include "mod/push_policy.h"
#include "server/c2s.h"
#include "server/component.h"
#include "server/iqtrack.h"
#include "server/module.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "server/stanza.h"
#include "store/store.h"
#include "xml/parser.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP                 "push"
#define NS_PUBSUB            "http://jabber.org/protocol/pubsub"
#define NS_DATA              "jabber:x:data"
#define FORM_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"

#define BATCH_MS       1000   /* notifications of one session wait this long for more */
#define NODE_MAX       1023   /* longest node name accepted, bytes */
#define OPTIONS_MAX    8192   /* longest publish-options form kept, bytes serialized */
#define SUPPRESS_MS    60000  /* how long a handed-off, already notified message is remembered */
#define SUPPRESS_LIMIT 100000 /* most such messages remembered at once */
#define START_POLL_MS  200    /* push.on_start: how often to look for the app servers' components */
#define START_WAIT_MS  60000  /* push.on_start: how long to wait for a component to connect */

static const struct tern_push_policy *policy = &tern_push_default_policy;

void tern_push_set_policy(const struct tern_push_policy *p) {
    policy = p ? p : &tern_push_default_policy;
}

static const struct tern_config *cfg_of(const struct tern_shard *shard) {
    return shard->server->cfg;
}

/* ---- the bounded publish queue and error bookkeeping ------------------------------- */

static size_t inflight;          /* publishes sent, answer or timeout not yet in */
static uint64_t dropped;         /* publishes refused because inflight reached push.max_queue */
static uint64_t dropped_logged;  /* dropped when the last "queue full" line was written */
static uint64_t drop_log_at;     /* loop ms of that line */
static struct tern_map erroring; /* "user\0jid\0node" -> error jobs submitted (a generation) */
static uintptr_t error_gen;      /* last generation handed out */

static size_t reg_key(char *out, size_t size, const char *user, const char *jid, const char *node) {
    int n = snprintf(out, size, "%s%c%s%c%s", user, 0, jid, 0, node);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* A store job that counts an error against a registration, or resets its count. */
struct err_req {
    struct tern_store_job job; /* store linkage */
    char *user, *jid, *node;   /* the registration */
    int ok;                    /* reset (a success) rather than count */
    uintptr_t gen;             /* ok: the registration's generation in erroring when submitted */
    int max;                   /* push.max_errors */
    int errors;                /* count after the job */
};

static int err_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct err_req *r = tern_store_container(job, struct err_req, job);
    if (r->ok)
        return b->ops->push_ok(b, r->user, r->jid, r->node);
    return b->ops->push_error(b, r->user, r->jid, r->node, r->max, &r->errors);
}

static void err_done(struct tern_store_job *job, int err) {
    struct err_req *r = tern_store_container(job, struct err_req, job);
    char key[4 * (TERN_JID_PART_MAX + 1) + NODE_MAX + 8];
    size_t klen = reg_key(key, sizeof key, r->user, r->jid, r->node);
    /* Forget the key once the count is 0 (unless an error job was submitted
     * after this reset: it counts again) or the registration is gone. */
    uintptr_t now_gen = klen ? (uintptr_t)tern_map_get(&erroring, key, klen) : 0;
    if (now_gen && ((err == 0 && r->ok && now_gen == r->gen) ||
                    (err == 0 && !r->ok && r->errors >= r->max) || err == TERN_E_NOTFOUND))
        tern_map_del(&erroring, key, klen);
    if (err == 0 && !r->ok && r->errors >= r->max) {
        tern_warn(COMP,
                  "removed the push registration of %s to %s node %s after %d errors in a row",
                  r->user, r->jid, r->node, r->errors);
    } else if (err != 0 && err != TERN_E_NOTFOUND) {
        tern_warn(COMP, "recording a publish result for %s (%s node %s): %s", r->user, r->jid,
                  r->node, tern_strerror(err));
    }
    free(r->user);
    free(r->jid);
    free(r->node);
    free(r);
}

/* What a publish needs to remember until its answer. */
struct pub_ctx {
    char *user, *jid, *node; /* the registration */
    int errors;              /* its error count when read */
};

static void pub_ctx_free(struct pub_ctx *p) {
    free(p->user);
    free(p->jid);
    free(p->node);
    free(p);
}

static void record_result(struct tern_shard *shard, struct pub_ctx *p, int ok) {
    char key[4 * (TERN_JID_PART_MAX + 1) + NODE_MAX + 8];
    size_t klen = reg_key(key, sizeof key, p->user, p->jid, p->node);
    uintptr_t gen = klen ? (uintptr_t)tern_map_get(&erroring, key, klen) : 0;
    if (ok && p->errors == 0 && !gen)
        return; /* nothing to reset: no write */
    if (!ok && klen) {
        gen = ++error_gen ? error_gen : ++error_gen; /* never 0: 0 means absent */
        tern_map_put(&erroring, key, klen, (void *)gen);
    }
    struct err_req *r = tern_calloc(1, sizeof *r);
    r->gen = gen;
    r->user = p->user;
    r->jid = p->jid;
    r->node = p->node;
    p->user = p->jid = p->node = NULL;
    r->ok = ok;
    r->max = cfg_of(shard)->push_max_errors;
    r->job.run = err_run;
    r->job.done = err_done;
    r->job.write = 1;
    if (tern_store_submit(shard->server->store, &r->job) != 0)
        err_done(&r->job, TERN_E_CLOSED);
}

/* The condition and type of an <iq type='error'/>. */
static void error_of(const struct tern_xml *iq, const char **type, const char **cond) {
    const struct tern_xml *e = tern_xml_child(iq, NULL, "error");
    const struct tern_xml *c = e ? tern_xml_child(e, TERN_NS_STANZA_ERRORS, NULL) : NULL;
    *type = e ? tern_xml_attr(e, "type") : NULL;
    *cond = c ? c->name : "undefined-condition";
    if (!*type)
        *type = "cancel";
}

/*
 * XEP-0357 §7.1: an error disables the registration, but a server may keep
 * it for transient errors until enough come in a row. A type='wait' error or
 * silence is transient and not counted; any other error counts; a success
 * starts the count again (push.max_errors).
 */
static void on_answer(struct tern_shard *shard, const struct tern_xml *resp, void *ud) {
    struct pub_ctx *p = ud;
    inflight--;
    const char *type = resp ? tern_xml_attr(resp, "type") : NULL;
    if (!resp) {
        tern_info(COMP,
                  "no answer from %s node %s (publish for %s) within push.timeout; not "
                  "counted as an error",
                  p->jid, p->node, p->user);
    } else if (type && strcmp(type, "result") == 0) {
        tern_debug(COMP, "%s node %s took the notification for %s", p->jid, p->node, p->user);
        if (!shard->server->shutting_down)
            record_result(shard, p, 1);
    } else {
        const char *etype, *cond;
        error_of(resp, &etype, &cond);
        if (strcmp(etype, "wait") == 0) {
            tern_info(COMP, "%s node %s answered %s/%s to a publish for %s; not counted", p->jid,
                      p->node, etype, cond, p->user);
        } else {
            tern_info(COMP, "%s node %s answered %s/%s to a publish for %s", p->jid, p->node, etype,
                      cond, p->user);
            if (!shard->server->shutting_down)
                record_result(shard, p, 0);
        }
    }
    pub_ctx_free(p);
}

static void log_drop(struct tern_shard *shard, const char *user, const struct tern_push_reg *reg) {
    dropped++;
    uint64_t now = uv_now(shard->loop);
    /* One line a second at most: a full queue is when logs must not flood. */
    if (dropped_logged && now - drop_log_at < 1000)
        return;
    tern_warn(COMP,
              "push queue full (%zu publishes in flight, push.max_queue %d): notification for %s "
              "to %s node %s dropped; %llu dropped since start",
              inflight, cfg_of(shard)->push_max_queue, user, reg->jid, reg->node,
              (unsigned long long)dropped);
    dropped_logged = dropped;
    drop_log_at = now;
}

/* The component that serves jid's domain is configured but not connected. */
static int component_absent(const char *jid) {
    struct tern_jid j;
    if (tern_jid_parse(&j, jid) != 0)
        return 0;
    int absent = tern_component_known(j.domain) && !tern_component_connected(j.domain);
    tern_jid_free(&j);
    return absent;
}

/* What notifications for a user may carry: push.include_* narrowed by the
 * user's content options (opts NULL: the user set none). */
static struct tern_push_content content_of(const struct tern_config *cfg,
                                           const struct tern_push_options *opts) {
    struct tern_push_content c = {
        .include_sender = cfg->push_include_sender && (!opts || opts->senders),
        .include_body = cfg->push_include_body && (!opts || opts->bodies),
        .placeholder = cfg->push_body_placeholder,
        .include_count = !opts || opts->count,
    };
    return c;
}

/*
 * Publish sum to one registration (XEP-0357 §7): an IQ set from the domain.
 * opts are the user's content options (NULL: none set).
 */
static void publish(struct tern_shard *shard, const char *user, const struct tern_push_reg *reg,
                    const struct tern_push_summary *sum, const struct tern_push_options *opts) {
    const struct tern_config *cfg = cfg_of(shard);
    if ((size_t)cfg->push_max_queue <= inflight) {
        log_drop(shard, user, reg);
        return;
    }
    /* An app server of ours that is not connected cannot answer: say so now
     * rather than after push.timeout, and, like silence, do not count it. */
    if (component_absent(reg->jid)) {
        tern_info(COMP,
                  "component %s is not connected: notification for %s (node %s) not sent; not "
                  "counted as an error",
                  reg->jid, user, reg->node);
        return;
    }
    struct tern_push_content content = content_of(cfg, opts);
    struct tern_xml *iq = tern_xml_new(TERN_NS_CLIENT, "iq");
    tern_xml_set_attr(iq, "type", "set");
    tern_xml_set_attr(iq, "to", reg->jid);
    struct tern_xml *ps = tern_xml_add_el(iq, NS_PUBSUB, "pubsub");
    struct tern_xml *pub = tern_xml_add_el(ps, NULL, "publish");
    tern_xml_set_attr(pub, "node", reg->node);
    struct tern_xml *item = tern_xml_add_el(pub, NULL, "item");
    tern_xml_add_child_take(item, policy->build(sum, &content));
    /* §7: the options given at enable go with every publish. */
    struct tern_xml *form = NULL;
    if (reg->options && tern_xml_parse_one(TERN_NS_CLIENT, reg->options, strlen(reg->options),
                                           OPTIONS_MAX * 2, cfg->max_depth, &form) == 0)
        tern_xml_add_child_take(tern_xml_add_el(ps, NULL, "publish-options"), form);
    else if (reg->options)
        tern_warn(COMP,
                  "stored publish-options of %s (%s node %s) are unreadable; publishing "
                  "without them",
                  user, reg->jid, reg->node);

    struct pub_ctx *p = tern_calloc(1, sizeof *p);
    p->user = tern_strdup(user);
    p->jid = tern_strdup(reg->jid);
    p->node = tern_strdup(reg->node);
    p->errors = reg->errors;
    inflight++;
    tern_debug(COMP, "publishing to %s node %s for %s (%u messages%s)", reg->jid, reg->node, user,
               sum->count, sum->urgent ? ", urgent" : "");
    tern_iq_request(shard, iq, (uint64_t)cfg->push_timeout * 1000, on_answer, p);
}

/* ---- one round: read the registrations, pick, publish --------------------------------- */

static struct tern_map sessions; /* session uid (8 bytes) -> struct sess* */

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

static void round_free(struct round *r) {
    free(r->told);
    tern_push_summary_clear(&r->sum);
    tern_push_regs_free(r->regs, r->nregs);
    if (r->call)
        tern_xml_unref(&r->call);
    free(r->user);
    free(r->bare);
    free(r->own);
    free(r);
}

/* The user's content options into *opts; *has 0 (and rc 0) if none are set. */
static int options_read(struct tern_store_backend *b, const char *user,
                        struct tern_push_options *opts, int *has) {
    int rc = b->ops->push_options_get(b, user, opts);
    *has = rc == 0;
    return rc == TERN_E_NOTFOUND ? 0 : rc;
}

static int round_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct round *r = tern_store_container(job, struct round, job);
    int rc = b->ops->push_get(b, r->user, &r->regs, &r->nregs);
    if (rc == 0 && r->trig == TERN_PUSH_T_OFFLINE && r->nregs)
        rc = b->ops->offline_count(b, r->user, &r->offline);
    if (rc == 0 && r->nregs && !r->lookup)
        rc = options_read(b, r->user, &r->opts, &r->has_opts);
    return rc;
}

/* Where the device of reg stands, seen from round r. */
static enum tern_push_relation relation(const struct round *r, const struct tern_push_reg *reg) {
    struct tern_shard *shard = r->shard;
    struct tern_session_ref ref;
    if (!reg->resource)
        return TERN_PUSH_R_UNBOUND;
    if (r->own && strcmp(reg->resource, r->own) == 0)
        return TERN_PUSH_R_OWN;
    if (tern_sessions_find(shard->server->sessions, r->bare, reg->resource, &ref) != 0)
        return TERN_PUSH_R_UNBOUND;
    if (ref.shard != shard->id)
        return TERN_PUSH_R_LIVE; /* another shard's session: not ours to look into */
    struct tern_c2s *c = tern_shard_find(shard, ref.uid);
    if (!c)
        return TERN_PUSH_R_UNBOUND;
    struct tern_c2s_sm_info info;
    tern_c2s_sm_info(c, &info);
    return info.hibernating ? TERN_PUSH_R_HIBERNATED : TERN_PUSH_R_LIVE;
}

/*
 * A call invitation sent to the bare JID reaches several sessions of the
 * account as one stanza object, and each session starting a round would
 * tell every other device again. The devices told about a call are
 * remembered (by the stanza's identity, holding a reference) for a while.
 */
struct called {
    struct called *next;     /* list link */
    struct tern_xml *stanza; /* the invitation (a reference: its address stays unique) */
    char *reg;               /* "jid node" of a registration told about it */
    uint64_t until;          /* loop ms after which it is forgotten */
};

static struct called *called;
static size_t ncalled;

static void called_prune(uint64_t now, int all) {
    for (struct called **pp = &called; *pp;) {
        struct called *c = *pp;
        if (all || c->until <= now) {
            *pp = c->next;
            tern_xml_unref(&c->stanza);
            free(c->reg);
            free(c);
            ncalled--;
        } else {
            pp = &c->next;
        }
    }
}

/* 1 the first time reg is told about call (remembered), 0 after. */
static int call_first_time(struct tern_shard *shard, struct tern_xml *call,
                           const struct tern_push_reg *reg) {
    uint64_t now = uv_now(shard->loop);
    called_prune(now, 0);
    size_t len = strlen(reg->jid) + strlen(reg->node) + 2;
    char *key = tern_malloc(len);
    snprintf(key, len, "%s %s", reg->jid, reg->node);
    for (struct called *c = called; c; c = c->next) {
        if (c->stanza == call && strcmp(c->reg, key) == 0) {
            free(key);
            return 0;
        }
    }
    if (ncalled >= SUPPRESS_LIMIT) {
        free(key);
        return 1;
    }
    struct called *c = tern_calloc(1, sizeof *c);
    c->stanza = tern_xml_ref(call);
    c->reg = key;
    c->until = now + SUPPRESS_MS;
    c->next = called;
    called = c;
    ncalled++;
    return 1;
}

static void hibernation_found(struct round *r, int has_reg);
static void pushed_session(struct round *r, int own);

static void round_done(struct tern_store_job *job, int err) {
    struct round *r = tern_store_container(job, struct round, job);
    if (err) {
        tern_warn(COMP, "reading the push registrations of %s: %s", r->bare, tern_strerror(err));
        round_free(r);
        return;
    }
    if (r->lookup) {
        int has = 0;
        for (size_t i = 0; i < r->nregs; i++)
            has |= r->regs[i].resource && strcmp(r->regs[i].resource, r->own) == 0;
        hibernation_found(r, has);
        round_free(r);
        return;
    }
    if (r->shard->server->shutting_down) {
        round_free(r);
        return;
    }
    if (r->trig == TERN_PUSH_T_OFFLINE && r->offline > r->sum.count)
        r->sum.count = (unsigned)r->offline; /* message-count: all that wait, not only new ones */
    int own = 0;
    for (size_t i = 0; i < r->nregs; i++) {
        const struct tern_push_reg *reg = &r->regs[i];
        enum tern_push_relation rel = relation(r, reg);
        own |= rel == TERN_PUSH_R_OWN;
        if (r->wake && rel != TERN_PUSH_R_OWN)
            continue; /* a wake-up is for the hibernated session's own device */
        if (!policy->select(r->trig, rel, &r->sum))
            continue;
        /* No duplicates: a device already told about this message (before
         * its session ended and handed it on) is skipped, and so is one
         * already told about this call. */
        if (r->told && reg->resource && strcmp(reg->resource, r->told) == 0)
            continue;
        if (r->call && !call_first_time(r->shard, r->call, reg))
            continue;
        publish(r->shard, r->user, reg, &r->sum, r->has_opts ? &r->opts : NULL);
    }
    if (r->trig == TERN_PUSH_T_SESSION)
        pushed_session(r, own);
    round_free(r);
}

static struct round *round_new(struct tern_shard *shard, enum tern_push_trigger trig,
                               const char *user, const char *bare) {
    struct round *r = tern_calloc(1, sizeof *r);
    r->shard = shard;
    r->trig = trig;
    r->user = tern_strdup(user);
    r->bare = tern_strdup(bare);
    r->job.run = round_run;
    r->job.done = round_done;
    return r;
}

static void round_submit(struct round *r) {
    if (tern_store_submit(r->shard->server->store, &r->job) != 0)
        round_free(r);
}

/* ---- handed-off messages already notified ------------------------------------------ */

/*
 * When a session that was pushed for ends, its unacknowledged messages go
 * to offline storage (smacks.c hand-off) and come back here as
 * TERN_EV_OFFLINE_STORED, the same stanza objects. Its device was told
 * about them already; remembering them (by identity, with a reference)
 * keeps that device from being told twice.
 */
struct suppress {
    struct suppress *next;   /* list link */
    struct tern_xml *stanza; /* a reference */
    char *resource;          /* the device that was told */
    uint64_t until;          /* loop ms after which it is forgotten */
};

static struct suppress *suppressed;
static size_t nsuppressed;

static void suppress_prune(uint64_t now, int all) {
    for (struct suppress **pp = &suppressed; *pp;) {
        struct suppress *s = *pp;
        if (all || s->until <= now) {
            *pp = s->next;
            tern_xml_unref(&s->stanza);
            free(s->resource);
            free(s);
            nsuppressed--;
        } else {
            pp = &s->next;
        }
    }
}

/* The resource that was told about stanza, if any (taken: free it). */
static char *suppress_take(const struct tern_xml *stanza) {
    for (struct suppress **pp = &suppressed; *pp; pp = &(*pp)->next) {
        struct suppress *s = *pp;
        if (s->stanza != stanza)
            continue;
        char *res = s->resource;
        *pp = s->next;
        tern_xml_unref(&s->stanza);
        free(s);
        nsuppressed--;
        return res;
    }
    return NULL;
}

/* ---- sessions: hibernated queues and overdue acknowledgements --------------------------- */

struct sess {
    uint64_t uid;             /* the session (key) */
    struct tern_shard *shard; /* its shard */
    char *user;               /* localpart */
    char *bare;               /* user@domain */
    char *resource;           /* its resource */
    uv_timer_t timer;         /* next check: batch window or ack delay */
    uv_timer_t wake;          /* push.wake_before_expiry: the publish before the expiry */
    int open;                 /* timers not yet closed */
    uint64_t expires_at;      /* loop ms when the hibernation ends unless resumed (0: live) */
    int woken;                /* the wake-up publish of this hibernation went (or is going) */
    int pushed;               /* pushed_h is meaningful */
    uint32_t pushed_h;        /* newest unacknowledged stanza already notified (XEP-0198 h) */
    int has_reg;              /* its resource has a registration: 1, 0, or -1 (not known) */
    int hib_pushed;           /* notified since it last hibernated */
    int extended;             /* its hibernation was raised to push.max_hibernation */
};

static void sess_free(struct sess *s) {
    free(s->user);
    free(s->bare);
    free(s->resource);
    free(s);
}

static void sess_closed(uv_handle_t *h) {
    struct sess *s = h->data;
    if (--s->open == 0)
        sess_free(s);
}

static void on_sess_timer(uv_timer_t *t);

static struct sess *sess_get(const struct tern_event_args *a, int create) {
    uint64_t uid = tern_c2s_uid(a->session);
    struct sess *s = tern_map_get(&sessions, &uid, sizeof uid);
    if (s || !create || !uid || !a->jid->local || !a->jid->resource)
        return s;
    s = tern_calloc(1, sizeof *s);
    s->uid = uid;
    s->shard = a->shard;
    s->user = tern_strdup(a->jid->local);
    s->bare = tern_jid_bare(a->jid);
    s->resource = tern_strdup(a->jid->resource);
    s->has_reg = -1;
    uv_timer_init(a->shard->loop, &s->timer);
    s->timer.data = s;
    uv_timer_init(a->shard->loop, &s->wake);
    s->wake.data = s;
    s->open = 2;
    tern_map_put(&sessions, &s->uid, sizeof s->uid, s);
    return s;
}

/* Check within ms at the latest (an earlier check stays). */
static void sess_arm(struct sess *s, uint64_t ms) {
    if (uv_is_active((uv_handle_t *)&s->timer) && uv_timer_get_due_in(&s->timer) <= ms)
        return;
    uv_timer_start(&s->timer, on_sess_timer, ms, 0);
}

/* What a walk over a session's unacknowledged stanzas found. */
struct walk {
    const struct sess *s;         /* the session */
    struct tern_push_summary sum; /* every important unacknowledged stanza */
    uint32_t newest;              /* h of the newest important one */
    int fresh;                    /* an important one was not notified yet */
    const struct tern_xml *call;  /* the newest call invitation not notified yet */
};

static int walk_one(const struct tern_xml *st, uint32_t h, int64_t stamp, void *ud) {
    struct walk *w = ud;
    struct tern_push_item item;
    (void)stamp;
    if (policy->classify(st, &item) == TERN_PUSH_NONE)
        return 0;
    tern_push_summary_add(&w->sum, &item);
    w->newest = h;
    /* XEP-0198 §5: h wraps, so compare by difference. */
    if (!w->s->pushed || (int32_t)(h - w->s->pushed_h) > 0) {
        w->fresh = 1;
        if (item.cls == TERN_PUSH_CALL)
            w->call = st;
    }
    return 0;
}

/*
 * Is there something to tell s's device? Only important unacknowledged
 * stanzas it was not told about count. Hibernated (or forced: the ack is
 * overdue by sm.ack_timeout, or a call): tell it now. Live: tell it once an
 * <r/> has waited push.ack_delay for its answer; a client that answers in
 * time is acking and hears its messages itself. While stanzas wait and no
 * <r/> does (smacks.c asks after sm.request_interval), look again later.
 */
static void sess_check(struct sess *s, int force) {
    struct tern_c2s *c = tern_shard_find(s->shard, s->uid);
    if (!c || s->shard->server->shutting_down)
        return;
    struct tern_c2s_sm_info info;
    tern_c2s_sm_info(c, &info);
    if (!info.enabled || !info.queued)
        return;
    struct walk w = {.s = s};
    tern_c2s_sm_unacked(c, walk_one, &w);
    uint64_t delay = (uint64_t)cfg_of(s->shard)->push_ack_delay * 1000;
    uint64_t now = uv_now(s->shard->loop);
    uint64_t waited = info.r_sent_at && now > info.r_sent_at ? now - info.r_sent_at : 0;
    if (w.fresh && (info.hibernating || force || (info.r_sent_at && waited >= delay))) {
        s->pushed = 1;
        s->pushed_h = w.newest;
        s->hib_pushed |= info.hibernating;
        /* A device known to have no registration gets nothing, unless it
         * is a call, which goes to the account's other devices too. */
        if (s->has_reg != 0 || w.call) {
            struct round *r = round_new(s->shard, TERN_PUSH_T_SESSION, s->user, s->bare);
            r->own = tern_strdup(s->resource);
            r->own_uid = s->uid;
            r->sum = w.sum;
            memset(&w.sum, 0, sizeof w.sum);
            r->call = w.call ? tern_xml_ref((struct tern_xml *)w.call) : NULL;
            round_submit(r);
        }
    } else if (w.fresh && !info.hibernating) {
        sess_arm(s, info.r_sent_at ? delay - waited : delay);
    }
    tern_push_summary_clear(&w.sum);
}

static void on_sess_timer(uv_timer_t *t) {
    sess_check(t->data, 0);
}

/*
 * push.wake_before_expiry: once per hibernation, that long before the
 * session would expire, tell its own device what waits (message-count 0 if
 * nothing does), so the app can wake and resume in time. It goes through
 * the session round like any notification, but only to the session's own
 * registration, and it does not move the expiry.
 */
static void on_wake_timer(uv_timer_t *t) {
    struct sess *s = t->data;
    struct tern_c2s *c = tern_shard_find(s->shard, s->uid);
    if (!c || s->woken || s->has_reg == 0 || s->shard->server->shutting_down)
        return;
    struct tern_c2s_sm_info info;
    tern_c2s_sm_info(c, &info);
    if (!info.hibernating)
        return;
    s->woken = 1;
    struct walk w = {.s = s};
    tern_c2s_sm_unacked(c, walk_one, &w);
    struct round *r = round_new(s->shard, TERN_PUSH_T_SESSION, s->user, s->bare);
    r->own = tern_strdup(s->resource);
    r->own_uid = s->uid;
    r->wake = 1;
    r->sum = w.sum;
    tern_info(COMP, "%s/%s expires in %llu ms unless resumed: waking its device (%u messages)",
              s->bare, s->resource,
              (unsigned long long)(s->expires_at > uv_now(s->shard->loop)
                                       ? s->expires_at - uv_now(s->shard->loop)
                                       : 0),
              w.sum.count);
    round_submit(r);
}

/* The session's expiry moved to ms from now: (re)arm the wake-up before it. */
static void wake_arm(struct sess *s, uint64_t ms) {
    uint64_t now = uv_now(s->shard->loop);
    uint64_t before = (uint64_t)cfg_of(s->shard)->push_wake_before_expiry * 1000;
    s->expires_at = now + ms;
    if (!before || s->woken || s->has_reg == 0)
        return;
    /* A resume timeout shorter than the lead time: wake at once. */
    uv_timer_start(&s->wake, on_wake_timer, ms > before ? ms - before : 0, 0);
}

/*
 * A session round is over: the session now knows whether its device has a
 * registration. After the first notification of a hibernated session whose
 * expiry was raised, its own resume timeout applies again: the device has
 * been woken, and either resumes or lets its messages go offline.
 */
static void pushed_session(struct round *r, int own) {
    struct sess *s = tern_map_get(&sessions, &r->own_uid, sizeof r->own_uid);
    struct tern_c2s *c = s ? tern_shard_find(s->shard, s->uid) : NULL;
    if (!c)
        return;
    s->has_reg = own;
    if (!own || !s->extended || r->wake)
        return;
    struct tern_c2s_sm_info info;
    tern_c2s_sm_info(c, &info);
    s->extended = 0;
    if (info.hibernating && tern_c2s_sm_set_expiry(c, info.timeout) == 0) {
        tern_info(COMP, "%s/%s was notified; it expires in %d s unless resumed", s->bare,
                  s->resource, info.timeout);
        wake_arm(s, (uint64_t)info.timeout * 1000);
    }
}

/* push.max_hibernation: a session whose device has a registration waits
 * longer for resumption, since a notification can wake it. */
static void hibernation_found(struct round *r, int has_reg) {
    struct sess *s = tern_map_get(&sessions, &r->own_uid, sizeof r->own_uid);
    struct tern_c2s *c = s ? tern_shard_find(s->shard, s->uid) : NULL;
    int secs = cfg_of(r->shard)->push_max_hibernation;
    if (!c)
        return;
    s->has_reg = has_reg;
    if (!has_reg) {
        uv_timer_stop(&s->wake); /* nobody to wake */
        return;
    }
    uint64_t now = uv_now(s->shard->loop);
    if (s->expires_at > now && !uv_is_active((uv_handle_t *)&s->wake))
        wake_arm(s, s->expires_at - now); /* it was thought to have none */
    if (s->extended || s->hib_pushed)
        return;
    struct tern_c2s_sm_info info;
    tern_c2s_sm_info(c, &info);
    if (!info.hibernating || secs <= info.timeout || tern_c2s_sm_set_expiry(c, secs) != 0)
        return;
    s->extended = 1;
    wake_arm(s, (uint64_t)secs * 1000);
    tern_info(COMP, "%s/%s has push enabled: kept hibernated up to %d s (push.max_hibernation)",
              s->bare, s->resource, secs);
}

/*
 * A call invitation that a connected session took still rings the user's
 * other devices: a round without an own session reaches every registration
 * whose device is not connected (the policy's urgent rule), each once per
 * call (call_first_time), however many sessions took it.
 */
static void ring_others(const struct tern_event_args *a, const struct tern_push_item *item) {
    char *bare = tern_jid_bare(a->jid);
    struct round *r = round_new(a->shard, TERN_PUSH_T_SESSION, a->jid->local, bare);
    free(bare);
    tern_push_summary_add(&r->sum, item);
    r->call = tern_xml_ref((struct tern_xml *)a->stanza);
    round_submit(r);
}

static void on_delivered(const struct tern_event_args *a) {
    struct tern_c2s_sm_info info;
    struct tern_push_item item;
    if (!a->session || !a->stanza || !a->jid || !a->jid->local || a->shard->server->shutting_down)
        return;
    enum tern_push_class cls = policy->classify(a->stanza, &item);
    if (cls == TERN_PUSH_CALL)
        ring_others(a, &item);
    tern_c2s_sm_info(a->session, &info);
    if (!info.enabled || info.hibernating || cls == TERN_PUSH_NONE)
        return;
    struct sess *s = sess_get(a, 1);
    if (s && !uv_is_active((uv_handle_t *)&s->timer))
        uv_timer_start(&s->timer, on_sess_timer, (uint64_t)cfg_of(a->shard)->push_ack_delay * 1000,
                       0);
}

static void on_queued(const struct tern_event_args *a) {
    struct tern_push_item item;
    if (!a->session || !a->stanza || a->shard->server->shutting_down)
        return;
    enum tern_push_class cls = policy->classify(a->stanza, &item);
    if (cls == TERN_PUSH_NONE)
        return;
    struct sess *s = sess_get(a, 1);
    if (!s)
        return;
    if (cls == TERN_PUSH_CALL)
        sess_check(s, 1); /* a call does not wait for a batch */
    else
        sess_arm(s, BATCH_MS);
}

static void on_hibernated(const struct tern_event_args *a) {
    if (!a->session || a->shard->server->shutting_down)
        return;
    struct sess *s = sess_get(a, 1);
    if (!s)
        return;
    s->hib_pushed = 0;
    s->woken = 0;
    struct tern_c2s_sm_info info;
    tern_c2s_sm_info(a->session, &info);
    wake_arm(s, (uint64_t)info.timeout * 1000); /* smacks.c armed the expiry with it */
    /* Before the batch check (jobs run in order): whether to keep it longer,
     * and whether there is a device to wake. */
    if ((cfg_of(a->shard)->push_max_hibernation > 0 ||
         cfg_of(a->shard)->push_wake_before_expiry > 0) &&
        !s->extended) {
        struct round *r = round_new(a->shard, TERN_PUSH_T_SESSION, s->user, s->bare);
        r->own = tern_strdup(s->resource);
        r->own_uid = s->uid;
        r->lookup = 1;
        round_submit(r);
    }
    sess_arm(s, BATCH_MS); /* what it left unacknowledged, if important */
}

static void on_ack_overdue(const struct tern_event_args *a) {
    if (!a->session || a->shard->server->shutting_down)
        return;
    struct sess *s = sess_get(a, 1);
    if (s)
        sess_check(s, 1);
}

static void on_resumed(const struct tern_event_args *a) {
    struct sess *s = a->session ? sess_get(a, 0) : NULL;
    if (!s)
        return;
    s->extended = 0;
    s->expires_at = 0;
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->wake);
    /* Live again: what was re-sent must now be acknowledged in time. */
    struct tern_c2s_sm_info info;
    tern_c2s_sm_info(a->session, &info);
    if (info.queued && !a->shard->server->shutting_down)
        uv_timer_start(&s->timer, on_sess_timer, (uint64_t)cfg_of(a->shard)->push_ack_delay * 1000,
                       0);
}

static int remember_told(const struct tern_xml *st, uint32_t h, int64_t stamp, void *ud) {
    struct sess *s = ud;
    struct tern_push_item item;
    (void)stamp;
    if ((int32_t)(h - s->pushed_h) > 0 || nsuppressed >= SUPPRESS_LIMIT)
        return 1;
    if (policy->classify(st, &item) == TERN_PUSH_NONE)
        return 0; /* never stored offline as news, nothing to remember */
    struct suppress *e = tern_calloc(1, sizeof *e);
    e->stanza = tern_xml_ref((struct tern_xml *)st);
    e->resource = tern_strdup(s->resource);
    e->until = uv_now(s->shard->loop) + SUPPRESS_MS;
    e->next = suppressed;
    suppressed = e;
    nsuppressed++;
    return 0;
}

static void mark_at_shutdown(const struct tern_event_args *a);

static void on_closing(const struct tern_event_args *a) {
    if (a->shard->server->shutting_down && cfg_of(a->shard)->push_on_start)
        mark_at_shutdown(a);
    struct sess *s = a->session ? sess_get(a, 0) : NULL;
    if (!s)
        return;
    tern_map_del(&sessions, &s->uid, sizeof s->uid);
    /* Called before the hand-off (c2s.c teardown): the queue is still there. */
    if (s->pushed && !a->shard->server->shutting_down) {
        suppress_prune(uv_now(a->shard->loop), 0);
        tern_c2s_sm_unacked(a->session, remember_told, s);
    }
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->wake);
    uv_close((uv_handle_t *)&s->timer, sess_closed);
    uv_close((uv_handle_t *)&s->wake, sess_closed);
}

/* ---- offline storage ------------------------------------------------------------------ */

/*
 * Each message stored offline is announced at once, one notification per
 * message (message-count says how many wait in all), to the registrations
 * whose device has no session. Batching them the way hibernated sessions
 * are would delay the first and merge the rest; offline devices are the
 * ones that need to hear promptly, and app servers coalesce on their side.
 */
static void on_offline_stored(const struct tern_event_args *a) {
    struct tern_push_item item;
    if (!a->stanza || !a->jid->local || a->shard->server->shutting_down)
        return;
    char *told = suppress_take(a->stanza);
    if (policy->classify(a->stanza, &item) == TERN_PUSH_NONE) {
        free(told);
        return;
    }
    char *bare = tern_jid_bare(a->jid);
    struct round *r = round_new(a->shard, TERN_PUSH_T_OFFLINE, a->jid->local, bare);
    free(bare);
    tern_push_summary_add(&r->sum, &item);
    r->told = told;
    if (item.cls == TERN_PUSH_CALL)
        r->call = tern_xml_ref((struct tern_xml *)a->stanza);
    round_submit(r);
}

/* ---- enable and disable (XEP-0357 §5, §6) ------------------------------------------- */

struct reg_req {
    struct tern_store_job job;     /* store linkage */
    struct tern_shard *shard;      /* where done runs */
    struct tern_xml *iq;           /* the request (a reference) */
    struct tern_jid from;          /* requester */
    struct tern_jid to;            /* addressee */
    char *user;                    /* localpart */
    uint64_t uid;                  /* the requesting session, 0 if none */
    int disable;                   /* disable rather than enable */
    struct tern_push_reg reg;      /* enable: what to store; disable: jid and node (or NULL) */
    int max;                       /* push.max_devices */
    struct tern_push_reg *evicted; /* enable: registrations pushed out by the cap */
    size_t nevicted;               /* entries in evicted */
    size_t removed;                /* disable: how many went */
    int has_opts;                  /* enable: it carried content options */
    struct tern_push_options opts; /* enable: asked for; after the job, the user's */
    int narrowed;                  /* enable: options set earlier kept some of it off */
};

static void reply(struct reg_req *r, struct tern_xml *reply_take) {
    struct tern_iq_ctx ctx = {
        .shard = r->shard,
        .from = &r->from,
        .to = &r->to,
        .iq = r->iq,
        .payload = tern_xml_first_el(r->iq),
        .target = TERN_IQ_TO_ACCOUNT,
    };
    tern_module_reply(&ctx, reply_take);
}

static void reply_error(struct tern_iq_ctx *ctx, enum tern_error_type type,
                        enum tern_stanza_cond cond, const char *text) {
    struct tern_stanza_error e = {type, cond, text};
    tern_module_reply(ctx, tern_stanza_error_reply(ctx->iq, &e));
}

static void reg_req_free(struct reg_req *r) {
    tern_xml_unref(&r->iq);
    tern_jid_free(&r->from);
    tern_jid_free(&r->to);
    free(r->user);
    free(r->reg.jid);
    free(r->reg.node);
    free(r->reg.options);
    free(r->reg.resource);
    tern_push_regs_free(r->evicted, r->nevicted);
    free(r);
}

/*
 * Enable stores the registration and, if asked, the user's content
 * options, in one job (one savepoint: both or neither). Options already
 * set can only be narrowed: each is what was asked and what was set. They
 * are forgotten with the user's last registration (the store's doing), so
 * the first enable after that sets them afresh.
 */
static int reg_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct reg_req *r = tern_store_container(job, struct reg_req, job);
    if (r->disable)
        return b->ops->push_del(b, r->user, r->reg.jid, r->reg.node, &r->removed);
    int rc = b->ops->push_put(b, r->user, &r->reg, r->max, &r->evicted, &r->nevicted);
    if (rc != 0 || !r->has_opts)
        return rc;
    struct tern_push_options had;
    int set = 0;
    rc = options_read(b, r->user, &had, &set);
    if (rc == 0 && set) {
        struct tern_push_options asked = r->opts;
        r->opts.senders = asked.senders && had.senders;
        r->opts.count = asked.count && had.count;
        r->opts.bodies = asked.bodies && had.bodies;
        r->narrowed = r->opts.senders != asked.senders || r->opts.count != asked.count ||
                      r->opts.bodies != asked.bodies;
    }
    return rc == 0 ? b->ops->push_options_put(b, r->user, &r->opts) : rc;
}

static void reg_done(struct tern_store_job *job, int err) {
    struct reg_req *r = tern_store_container(job, struct reg_req, job);
    char *who = tern_jid_full(&r->from);
    if (err) {
        tern_warn(COMP, "%s push registration of %s (%s node %s) failed: %s",
                  r->disable ? "removing the" : "storing a", who, r->reg.jid,
                  r->reg.node ? r->reg.node : "*", tern_strerror(err));
        struct tern_stanza_error e = {TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR, NULL};
        reply(r, tern_stanza_error_reply(r->iq, &e));
    } else {
        if (r->disable)
            tern_info(COMP, "%s disabled push to %s node %s (%zu registrations removed)", who,
                      r->reg.jid, r->reg.node ? r->reg.node : "*", r->removed);
        else
            tern_info(COMP, "%s enabled push to %s node %s", who, r->reg.jid, r->reg.node);
        if (r->has_opts)
            tern_info(COMP,
                      "%s push content options: include-senders %d, include-message-count %d, "
                      "include-message-bodies %d%s",
                      r->user, r->opts.senders, r->opts.count, r->opts.bodies,
                      r->narrowed ? " (asked for more; options can only narrow while "
                                    "registrations exist)"
                                  : "");
        for (size_t i = 0; i < r->nevicted; i++)
            tern_info(COMP,
                      "%s has more than %d push registrations (push.max_devices): evicted the "
                      "oldest, %s node %s",
                      r->user, r->max, r->evicted[i].jid, r->evicted[i].node);
        /* The requesting session's device has a registration now, or may not. */
        struct sess *s = r->uid ? tern_map_get(&sessions, &r->uid, sizeof r->uid) : NULL;
        if (s)
            s->has_reg = r->disable ? -1 : 1;
        reply(r, tern_stanza_result(r->iq));
    }
    free(who);
    reg_req_free(r);
}

/* The first value of field var of a data form (caller frees), or NULL. */
static char *form_value(const struct tern_xml *x, const char *var) {
    for (struct tern_xml *f = tern_xml_child(x, NS_DATA, "field"); f;
         f = tern_xml_next(f, NS_DATA, "field")) {
        const char *v = tern_xml_attr(f, "var");
        if (v && strcmp(v, var) == 0) {
            struct tern_xml *val = tern_xml_child(f, NS_DATA, "value");
            return val ? tern_xml_text(val) : NULL;
        }
    }
    return NULL;
}

/* XEP-0004 §3.3 boolean: 1, 0, or -1 if value is not one. */
static int form_bool(const char *value) {
    if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0)
        return 1;
    if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0)
        return 0;
    return -1;
}

/*
 * Our content options form (urn:xmpp:push:options) into *o: boolean fields
 * include-senders, include-message-count and include-message-bodies; a
 * field left out asks for no restriction. An unknown field is refused
 * rather than ignored: a client that misspells a restriction must hear so.
 */
static const char *read_options(const struct tern_xml *x, struct tern_push_options *o) {
    *o = (struct tern_push_options){1, 1, 1};
    for (struct tern_xml *f = tern_xml_child(x, NS_DATA, "field"); f;
         f = tern_xml_next(f, NS_DATA, "field")) {
        const char *var = tern_xml_attr(f, "var");
        int *slot = NULL;
        if (!var)
            return "a field of the " TERN_NS_PUSH_OPTIONS " form has no 'var'";
        if (strcmp(var, "FORM_TYPE") == 0)
            continue;
        if (strcmp(var, "include-senders") == 0)
            slot = &o->senders;
        else if (strcmp(var, "include-message-count") == 0)
            slot = &o->count;
        else if (strcmp(var, "include-message-bodies") == 0)
            slot = &o->bodies;
        else
            return "unknown field in the " TERN_NS_PUSH_OPTIONS " form (known: include-senders, "
                   "include-message-count, include-message-bodies)";
        struct tern_xml *val = tern_xml_child(f, NS_DATA, "value");
        char *v = val ? tern_xml_text(val) : NULL;
        int b = v ? form_bool(v) : -1;
        free(v);
        if (b < 0)
            return "the fields of the " TERN_NS_PUSH_OPTIONS " form take a boolean value "
                   "(1, 0, true or false)";
        *slot = b;
    }
    return NULL;
}

/*
 * The data forms of an <enable/>: at most one publish-options form (its
 * serialized copy into r->reg.options) and at most one of our content
 * options (urn:xmpp:push:options, which can only take away). Each must be a
 * submitted form (XEP-0004 §3.1: type
 * 'submit'; a form without a type, as in XEP-0357's own examples, is taken
 * as one). Anything else is a bad request.
 */
static const char *read_forms(const struct tern_xml *enable, struct reg_req *r) {
    int have_po = 0, have_opts = 0;
    for (struct tern_xml *x = tern_xml_child(enable, NS_DATA, "x"); x;
         x = tern_xml_next(x, NS_DATA, "x")) {
        const char *type = tern_xml_attr(x, "type");
        if (type && strcmp(type, "submit") != 0)
            return "a data form in <enable/> must be of type 'submit'";
        char *ft = form_value(x, "FORM_TYPE");
        int po = ft && strcmp(ft, FORM_PUBLISH_OPTIONS) == 0;
        int opts = ft && strcmp(ft, TERN_NS_PUSH_OPTIONS) == 0;
        free(ft);
        if ((!po && !opts) || (po && have_po) || (opts && have_opts))
            return "expected at most one form of FORM_TYPE " FORM_PUBLISH_OPTIONS
                   " and at most one of " TERN_NS_PUSH_OPTIONS;
        if (opts) {
            have_opts = 1;
            const char *why = read_options(x, &r->opts);
            if (why)
                return why;
            r->has_opts = 1;
            continue;
        }
        have_po = 1;
        struct tern_xml *copy = tern_xml_copy(x);
        tern_xml_set_attr(copy, "type", "submit");
        struct tern_buf b;
        tern_buf_init(&b, OPTIONS_MAX);
        int rc = tern_xml_serialize(copy, TERN_NS_CLIENT, &b);
        tern_xml_unref(&copy);
        if (rc != 0) {
            tern_buf_free(&b);
            return "the publish-options form is too large";
        }
        r->reg.options = tern_buf_take(&b);
    }
    return NULL;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum tern_hook_result on_push_iq(struct tern_iq_ctx *ctx) {
    const struct tern_config *cfg = cfg_of(ctx->shard);
    const struct tern_xml *el = ctx->payload;
    const char *type = tern_xml_attr(ctx->iq, "type");
    int disable = strcmp(el->name, "disable") == 0;
    struct tern_jid jid;

    if (!ctx->from->local) {
        reply_error(ctx, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE, NULL);
        return TERN_HANDLED;
    }
    /* §5, §6: to the user's own bare JID (or no 'to', which means it). */
    if (ctx->target == TERN_IQ_TO_ACCOUNT && !tern_jid_equal(ctx->to, ctx->from, 1)) {
        reply_error(ctx, TERN_ET_AUTH, TERN_SC_FORBIDDEN, NULL);
        return TERN_HANDLED;
    }
    if (!disable && strcmp(el->name, "enable") != 0) {
        reply_error(ctx, TERN_ET_CANCEL, TERN_SC_FEATURE_NOT_IMPLEMENTED, NULL);
        return TERN_HANDLED;
    }
    if (strcmp(type, "set") != 0) {
        reply_error(ctx, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, "enable and disable are IQ sets");
        return TERN_HANDLED;
    }
    const char *jid_s = tern_xml_attr(el, "jid");
    if (!jid_s || !*jid_s) {
        reply_error(ctx, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, "the 'jid' attribute is required");
        return TERN_HANDLED;
    }
    if (tern_jid_parse(&jid, jid_s) != 0) {
        reply_error(ctx, TERN_ET_MODIFY, TERN_SC_JID_MALFORMED, NULL);
        return TERN_HANDLED;
    }
    const char *node = tern_xml_attr(el, "node");
    struct reg_req *r = tern_calloc(1, sizeof *r);
    r->disable = disable;
    r->reg.jid = tern_jid_full(&jid);
    if (!disable) {
        const char *why = NULL;
        enum tern_stanza_cond cond = TERN_SC_BAD_REQUEST;
        enum tern_error_type etype = TERN_ET_MODIFY;
        int own = jid.local && tern_jid_equal(&jid, ctx->from, 1);
        int server = !jid.local && strcmp(jid.domain, cfg->domain) == 0;
        if (own || server) {
            /* Publishing to the account itself (or to this server) would
             * loop back here: nothing that could ever deliver a push. */
            why = own ? "push to the account's own JID is refused"
                      : "push to this server's own domain is refused";
            cond = TERN_SC_NOT_ALLOWED;
            etype = TERN_ET_CANCEL;
        } else if (!node || !*node) {
            /* The XEP's schema requires it, and a publish needs a node (XEP-0060 §7.1.3.3). */
            why = "the 'node' attribute is required";
        } else if (strlen(node) > NODE_MAX) {
            why = "the node name is too long";
            cond = TERN_SC_NOT_ACCEPTABLE;
        } else {
            why = read_forms(el, r);
        }
        if (why) {
            reply_error(ctx, etype, cond, why);
            tern_jid_free(&jid);
            reg_req_free(r);
            return TERN_HANDLED;
        }
        const struct tern_jid *me = ctx->session ? tern_c2s_jid(ctx->session) : ctx->from;
        r->reg.resource = me && me->resource ? tern_strdup(me->resource) : NULL;
        r->reg.created_at = wall_ms();
        r->max = cfg->push_max_devices;
    }
    tern_jid_free(&jid);
    r->reg.node = node && (*node || !disable) ? tern_strdup(node) : NULL;
    r->shard = ctx->shard;
    r->iq = tern_xml_ref(ctx->iq);
    tern_jid_copy(&r->from, ctx->from);
    tern_jid_copy(&r->to, ctx->to);
    r->user = tern_strdup(ctx->from->local);
    r->uid = ctx->session ? tern_c2s_uid(ctx->session) : 0;
    r->job.run = reg_run;
    r->job.done = reg_done;
    r->job.write = 1;
    if (tern_store_submit(ctx->shard->server->store, &r->job) != 0)
        reg_done(&r->job, TERN_E_CLOSED);
    return TERN_HANDLED;
}

/* ---- push.on_start: sessions alive at shutdown ------------------------------------------ */

/*
 * At shutdown every session ends (system-shutdown) and fires
 * TERN_EV_SESSION_CLOSING, live or hibernated, while the store still runs
 * jobs (ternd.c closes it after the loop, running every queued job first).
 * Each such session marks its resource's registrations (TERN_PUSH_F_WAKE in
 * the flags column). At the next start the marked registrations are read
 * and unmarked in one job, and each gets one publish: when its app server
 * is one of our components, once that component is connected (it usually
 * reconnects a moment after ternd starts), for at most START_WAIT_MS.
 */
struct mark_req {
    struct tern_store_job job; /* store linkage */
    char *user, *resource;     /* the session's account and resource */
};

static int mark_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct mark_req *r = tern_store_container(job, struct mark_req, job);
    return b->ops->push_mark(b, r->user, r->resource);
}

static void mark_done(struct tern_store_job *job, int err) {
    struct mark_req *r = tern_store_container(job, struct mark_req, job);
    if (err)
        tern_warn(COMP, "recording %s/%s for push.on_start: %s", r->user, r->resource,
                  tern_strerror(err));
    free(r->user);
    free(r->resource);
    free(r);
}

static void mark_at_shutdown(const struct tern_event_args *a) {
    if (!a->session || !a->jid || !a->jid->local || !a->jid->resource)
        return;
    struct mark_req *r = tern_calloc(1, sizeof *r);
    r->user = tern_strdup(a->jid->local);
    r->resource = tern_strdup(a->jid->resource);
    r->job.run = mark_run;
    r->job.done = mark_done;
    r->job.write = 1;
    if (tern_store_submit(a->shard->server->store, &r->job) != 0)
        mark_done(&r->job, TERN_E_CLOSED);
}

/* One registration to tell at start. */
struct wake_entry {
    char *user;                    /* localpart */
    struct tern_push_reg reg;      /* the registration */
    size_t offline;                /* messages held offline for user */
    struct tern_push_options opts; /* user's content options */
    int has_opts;                  /* user has set some */
};

struct start_req {
    struct tern_store_job job;  /* store linkage */
    struct tern_shard *shard;   /* where to publish */
    int on;                     /* push.on_start (else only clear stale marks) */
    struct wake_entry *entries; /* read */
    size_t n;                   /* entries */
};

static struct wake_entry *waking; /* registrations waiting for their component */
static size_t nwaking;
static uv_timer_t start_timer;  /* polls for the components */
static int start_timer_used;    /* start_timer was initialised */
static uint64_t start_deadline; /* loop ms when waiting stops */

static void wake_entries_free(struct wake_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(e[i].user);
        free(e[i].reg.jid);
        free(e[i].reg.node);
        free(e[i].reg.options);
        free(e[i].reg.resource);
    }
    free(e);
}

static int start_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct start_req *r = tern_store_container(job, struct start_req, job);
    char **users = NULL;
    size_t nusers = 0;
    int rc = r->on ? b->ops->push_marked(b, &users, &nusers) : 0;
    for (size_t i = 0; rc == 0 && i < nusers; i++) {
        struct tern_push_reg *regs = NULL;
        size_t nregs = 0, offline = 0;
        struct tern_push_options opts;
        int has_opts = 0;
        rc = b->ops->push_get(b, users[i], &regs, &nregs);
        if (rc == 0)
            rc = b->ops->offline_count(b, users[i], &offline);
        if (rc == 0)
            rc = options_read(b, users[i], &opts, &has_opts);
        for (size_t j = 0; rc == 0 && j < nregs; j++) {
            if (!(regs[j].flags & TERN_PUSH_F_WAKE))
                continue;
            r->entries = tern_realloc(r->entries, (r->n + 1) * sizeof *r->entries);
            struct wake_entry *e = &r->entries[r->n++];
            e->user = tern_strdup(users[i]);
            e->reg = regs[j];
            e->offline = offline;
            e->opts = opts;
            e->has_opts = has_opts;
            memset(&regs[j], 0, sizeof regs[j]); /* moved */
        }
        tern_push_regs_free(regs, nregs);
    }
    tern_store_free_list(users, nusers);
    if (rc != 0)
        return rc;
    /* Told once: a crash before the publishes loses them, never repeats them.
     * With push.on_start off, marks left by an earlier run go too. */
    return b->ops->push_mark(b, NULL, NULL);
}

static void on_start_timer(uv_timer_t *t) {
    struct tern_shard *shard = t->data;
    int late = uv_now(shard->loop) >= start_deadline;
    size_t kept = 0;
    for (size_t i = 0; i < nwaking; i++) {
        struct wake_entry *e = &waking[i];
        if (shard->server->shutting_down) {
            /* dropped: no new requests once stopping */
        } else if (!component_absent(e->reg.jid)) {
            struct tern_push_summary sum = {.count = (unsigned)e->offline};
            tern_info(COMP,
                      "push.on_start: telling %s node %s that %s had a session at the last "
                      "shutdown (%zu messages offline)",
                      e->reg.jid, e->reg.node, e->user, e->offline);
            publish(shard, e->user, &e->reg, &sum, e->has_opts ? &e->opts : NULL);
        } else if (late) {
            tern_warn(COMP,
                      "push.on_start: component %s not connected within %d s; %s node %s "
                      "not told",
                      e->reg.jid, START_WAIT_MS / 1000, e->user, e->reg.node);
        } else {
            waking[kept++] = *e;
            continue;
        }
        free(e->user);
        free(e->reg.jid);
        free(e->reg.node);
        free(e->reg.options);
        free(e->reg.resource);
    }
    nwaking = kept;
    if (!nwaking) {
        free(waking);
        waking = NULL;
        uv_timer_stop(t);
    }
}

static void start_done(struct tern_store_job *job, int err) {
    struct start_req *r = tern_store_container(job, struct start_req, job);
    struct tern_shard *shard = r->shard;
    if (err)
        tern_warn(COMP, "reading the registrations for push.on_start: %s", tern_strerror(err));
    if (err || !r->n || shard->server->shutting_down || start_timer_used) {
        wake_entries_free(r->entries, r->n);
        free(r);
        return;
    }
    tern_info(COMP, "push.on_start: %zu registrations had a session at the last shutdown", r->n);
    waking = r->entries;
    nwaking = r->n;
    free(r);
    uv_timer_init(shard->loop, &start_timer);
    start_timer_used = 1;
    start_timer.data = shard;
    uv_unref((uv_handle_t *)&start_timer); /* never what keeps a stopping loop running */
    start_deadline = uv_now(shard->loop) + START_WAIT_MS;
    uv_timer_start(&start_timer, on_start_timer, 0, START_POLL_MS);
}

static void start_submit(struct tern_server *srv) {
    struct start_req *r = tern_calloc(1, sizeof *r);
    r->shard = srv->shards[0];
    r->on = srv->cfg->push_on_start;
    r->job.run = start_run;
    r->job.done = start_done;
    r->job.write = 1;
    if (tern_store_submit(srv->store, &r->job) != 0)
        start_done(&r->job, TERN_E_CLOSED);
}

/* ---- the content options in disco#info ---------------------------------------------- */

/*
 * disco#info of a user's own bare JID, asked by the user, carries the
 * content options in force as an extended form (XEP-0128): what the user
 * set, within what the server allows (push.include_*). Anyone else, or a
 * query with a node, gets the plain answer of the disco module.
 */
struct info_req {
    struct tern_store_job job;     /* store linkage */
    struct tern_shard *shard;      /* where done runs */
    struct tern_xml *iq;           /* the request (a reference) */
    struct tern_jid from;          /* the user */
    char *user;                    /* localpart */
    struct tern_push_options opts; /* read */
    int has_opts;                  /* the user has set some */
};

static int info_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct info_req *r = tern_store_container(job, struct info_req, job);
    return options_read(b, r->user, &r->opts, &r->has_opts);
}

static void add_bool_field(struct tern_xml *x, const char *var, int on) {
    struct tern_xml *f = tern_xml_add_el(x, NULL, "field");
    tern_xml_set_attr(f, "var", var);
    tern_xml_set_attr(f, "type", "boolean");
    tern_xml_add_text(tern_xml_add_el(f, NULL, "value"), on ? "1" : "0", 1);
}

static void info_done(struct tern_store_job *job, int err) {
    struct info_req *r = tern_store_container(job, struct info_req, job);
    struct tern_xml *res = tern_disco_info_result(r->iq, 1);
    if (err) {
        tern_warn(COMP, "reading the push content options of %s: %s; disco#info without them",
                  r->user, tern_strerror(err));
    } else {
        struct tern_push_content c = content_of(cfg_of(r->shard), r->has_opts ? &r->opts : NULL);
        struct tern_xml *q = tern_xml_first_el(res);
        struct tern_xml *x = tern_xml_add_el(q, NS_DATA, "x");
        tern_xml_set_attr(x, "type", "result");
        struct tern_xml *ft = tern_xml_add_el(x, NULL, "field");
        tern_xml_set_attr(ft, "var", "FORM_TYPE");
        tern_xml_set_attr(ft, "type", "hidden");
        tern_xml_add_text(tern_xml_add_el(ft, NULL, "value"), TERN_NS_PUSH_OPTIONS,
                          strlen(TERN_NS_PUSH_OPTIONS));
        add_bool_field(x, "include-senders", c.include_sender);
        add_bool_field(x, "include-message-count", c.include_count);
        add_bool_field(x, "include-message-bodies", c.include_body);
    }
    struct tern_jid to;
    tern_jid_copy(&to, &r->from);
    free(to.resource);
    to.resource = NULL;
    struct tern_iq_ctx ctx = {
        .shard = r->shard,
        .from = &r->from,
        .to = &to,
        .iq = r->iq,
        .payload = tern_xml_first_el(r->iq),
        .target = TERN_IQ_TO_ACCOUNT,
    };
    tern_module_reply(&ctx, res);
    tern_jid_free(&to);
    tern_xml_unref(&r->iq);
    tern_jid_free(&r->from);
    free(r->user);
    free(r);
}

static enum tern_hook_result on_disco_info(struct tern_iq_ctx *ctx) {
    if (strcmp(tern_xml_attr(ctx->iq, "type"), "get") != 0 || tern_xml_attr(ctx->payload, "node") ||
        !ctx->from->local || !tern_jid_equal(ctx->to, ctx->from, 1))
        return TERN_PASS;
    struct info_req *r = tern_calloc(1, sizeof *r);
    r->shard = ctx->shard;
    r->iq = tern_xml_ref(ctx->iq);
    tern_jid_copy(&r->from, ctx->from);
    r->user = tern_strdup(ctx->from->local);
    r->job.run = info_run;
    r->job.done = info_done;
    if (tern_store_submit(ctx->shard->server->store, &r->job) != 0)
        info_done(&r->job, TERN_E_CLOSED);
    return TERN_HANDLED;
}

/* ---- the module ------------------------------------------------------------------------- */

static int push_init(struct tern_server *srv) {
    tern_map_init(&sessions);
    tern_map_init(&erroring);
    inflight = 0;
    dropped = dropped_logged = drop_log_at = 0;
    waking = NULL;
    nwaking = 0;
    start_timer_used = 0;
    if (srv->store && srv->nshards)
        start_submit(srv);
    return 0;
}

static void free_sess(const void *k, size_t kl, void *v, void *ud) {
    (void)k, (void)kl, (void)ud;
    sess_free(v);
}

/* At exit the loop is closed: timers still in the maps were closed by the
 * final walk (ternd.c), so only memory is left. */
static void push_fini(struct tern_server *srv) {
    (void)srv;
    tern_map_each(&sessions, free_sess, NULL);
    tern_map_free(&sessions);
    tern_map_free(&erroring);
    wake_entries_free(waking, nwaking); /* start_timer was closed by the final walk */
    waking = NULL;
    nwaking = 0;
    suppress_prune(0, 1);
    called_prune(0, 1);
    if (dropped)
        tern_info(COMP, "%llu notifications were dropped because the push queue was full",
                  (unsigned long long)dropped);
}

static const struct tern_iq_def push_iqs[] = {
    {TERN_NS_PUSH, TERN_IQ_TO_SERVER | TERN_IQ_TO_ACCOUNT, on_push_iq},
    {TERN_NS_DISCO_INFO, TERN_IQ_TO_ACCOUNT, on_disco_info}, /* before the disco module's */
    {NULL, 0, NULL},
};

static const struct tern_event_def push_events[] = {
    {TERN_EV_DELIVERED, on_delivered},
    {TERN_EV_SM_QUEUED, on_queued},
    {TERN_EV_SM_HIBERNATED, on_hibernated},
    {TERN_EV_SM_ACK_OVERDUE, on_ack_overdue},
    {TERN_EV_SM_RESUMED, on_resumed},
    {TERN_EV_SESSION_CLOSING, on_closing},
    {TERN_EV_OFFLINE_STORED, on_offline_stored},
    {0, NULL},
};

/* XEP-0357 §4.1: the account (and, for clients that ask it, the server). */
static const char *const push_features[] = {TERN_NS_PUSH, NULL};

const struct tern_module tern_mod_push = {
    .name = "push",
    .init = push_init,
    .fini = push_fini,
    .iqs = push_iqs,
    .events = push_events,
    .server_features = push_features,
    .account_features = push_features,
};
