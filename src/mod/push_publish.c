/*
 * Push rounds and publishing (XEP-0357 §7): a round reads a user's
 * registrations off the loop, asks the policy which to tell, and publishes
 * to each an IQ set from the domain, with at most push.max_queue in flight.
 * The app server's answers are counted here (push.max_errors): a type
 * 'wait' error or silence is not counted; any other error is; a success
 * starts the count again.
 */
#include "mod/push_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "server/c2s.h"
#include "server/component.h"
#include "server/iqtrack.h"
#include "server/sessions.h"
#include "server/stanza.h"
#include "xml/parser.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP       "push"
#define NS_PUBSUB  "http://jabber.org/protocol/pubsub"
#define CALLED_MS  60000  /* how long the devices told about a call are remembered */
#define CALLED_MAX 100000 /* most such entries at once */

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
    char key[4 * (TERN_JID_PART_MAX + 1) + TERN__PUSH_NODE_MAX + 8];
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
    char key[4 * (TERN_JID_PART_MAX + 1) + TERN__PUSH_NODE_MAX + 8];
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
    r->max = tern__push_cfg(shard)->push_max_errors;
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
              inflight, tern__push_cfg(shard)->push_max_queue, user, reg->jid, reg->node,
              (unsigned long long)dropped);
    dropped_logged = dropped;
    drop_log_at = now;
}

/* The component that serves jid's domain is configured but not connected. */
int tern__push_component_absent(const char *jid) {
    struct tern_jid j;
    if (tern_jid_parse(&j, jid) != 0)
        return 0;
    int absent = tern_component_known(j.domain) && !tern_component_connected(j.domain);
    tern_jid_free(&j);
    return absent;
}

/* What notifications for a user may carry: push.include_* narrowed by the
 * user's content options (opts NULL: the user set none). */
struct tern_push_content tern__push_content(const struct tern_config *cfg,
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
void tern__push_publish(struct tern_shard *shard, const char *user, const struct tern_push_reg *reg,
                        const struct tern_push_summary *sum, const struct tern_push_options *opts) {
    const struct tern_config *cfg = tern__push_cfg(shard);
    if ((size_t)cfg->push_max_queue <= inflight) {
        log_drop(shard, user, reg);
        return;
    }
    /* An app server of ours that is not connected cannot answer: say so now
     * rather than after push.timeout, and, like silence, do not count it. */
    if (tern__push_component_absent(reg->jid)) {
        tern_info(COMP,
                  "component %s is not connected: notification for %s (node %s) not sent; not "
                  "counted as an error",
                  reg->jid, user, reg->node);
        return;
    }
    struct tern_push_content content = tern__push_content(cfg, opts);
    struct tern_xml *iq = tern_xml_new(TERN_NS_CLIENT, "iq");
    tern_xml_set_attr(iq, "type", "set");
    tern_xml_set_attr(iq, "to", reg->jid);
    struct tern_xml *ps = tern_xml_add_el(iq, NS_PUBSUB, "pubsub");
    struct tern_xml *pub = tern_xml_add_el(ps, NULL, "publish");
    tern_xml_set_attr(pub, "node", reg->node);
    struct tern_xml *item = tern_xml_add_el(pub, NULL, "item");
    tern_xml_add_child_take(item, tern__push_policy->build(sum, &content));
    /* §7: the options given at enable go with every publish. */
    struct tern_xml *form = NULL;
    if (reg->options && tern_xml_parse_one(TERN_NS_CLIENT, reg->options, strlen(reg->options),
                                           TERN__PUSH_OPTIONS_MAX * 2, cfg->max_depth, &form) == 0)
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
int tern__push_options_read(struct tern_store_backend *b, const char *user,
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
        rc = tern__push_options_read(b, r->user, &r->opts, &r->has_opts);
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

/* ---- remembered stanzas (struct tern__push_memo) ------------------------------------- */

void tern__push_memo_prune(struct tern__push_memo *m, uint64_t now, int all) {
    for (struct tern__push_memo_entry **pp = &m->head; *pp;) {
        struct tern__push_memo_entry *e = *pp;
        if (all || e->until <= now) {
            *pp = e->next;
            tern_xml_unref(&e->stanza);
            free(e->key);
            free(e);
            m->n--;
        } else {
            pp = &e->next;
        }
    }
}

int tern__push_memo_add(struct tern__push_memo *m, const struct tern_xml *stanza, char *key_take,
                        uint64_t until, size_t max) {
    if (m->n >= max) {
        free(key_take);
        return -1;
    }
    struct tern__push_memo_entry *e = tern_calloc(1, sizeof *e);
    e->stanza = tern_xml_ref((struct tern_xml *)stanza);
    e->key = key_take;
    e->until = until;
    e->next = m->head;
    m->head = e;
    m->n++;
    return 0;
}

int tern__push_memo_has(const struct tern__push_memo *m, const struct tern_xml *stanza,
                        const char *key) {
    for (const struct tern__push_memo_entry *e = m->head; e; e = e->next)
        if (e->stanza == stanza && strcmp(e->key, key) == 0)
            return 1;
    return 0;
}

char *tern__push_memo_take(struct tern__push_memo *m, const struct tern_xml *stanza) {
    for (struct tern__push_memo_entry **pp = &m->head; *pp; pp = &(*pp)->next) {
        struct tern__push_memo_entry *e = *pp;
        if (e->stanza != stanza)
            continue;
        char *key = e->key;
        *pp = e->next;
        tern_xml_unref(&e->stanza);
        free(e);
        m->n--;
        return key;
    }
    return NULL;
}

/*
 * A call invitation sent to the bare JID reaches several sessions of the
 * account as one stanza object, and each session starting a round would
 * tell every other device again. The devices told about a call are
 * remembered (by the stanza's identity, holding a reference) for a while.
 */
static struct tern__push_memo called; /* key: "jid node" of a registration told */

/* 1 the first time reg is told about call (remembered), 0 after. */
static int call_first_time(struct tern_shard *shard, struct tern_xml *call,
                           const struct tern_push_reg *reg) {
    uint64_t now = uv_now(shard->loop);
    tern__push_memo_prune(&called, now, 0);
    size_t len = strlen(reg->jid) + strlen(reg->node) + 2;
    char *key = tern_malloc(len);
    snprintf(key, len, "%s %s", reg->jid, reg->node);
    if (tern__push_memo_has(&called, call, key)) {
        free(key);
        return 0;
    }
    tern__push_memo_add(&called, call, key, now + CALLED_MS, CALLED_MAX); /* full: told anyway */
    return 1;
}

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
        tern__push_hibernation_found(r, has);
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
        if (!tern__push_policy->select(r->trig, rel, &r->sum))
            continue;
        /* No duplicates: a device already told about this message (before
         * its session ended and handed it on) is skipped, and so is one
         * already told about this call. */
        if (r->told && reg->resource && strcmp(reg->resource, r->told) == 0)
            continue;
        if (r->call && !call_first_time(r->shard, r->call, reg))
            continue;
        tern__push_publish(r->shard, r->user, reg, &r->sum, r->has_opts ? &r->opts : NULL);
    }
    if (r->trig == TERN_PUSH_T_SESSION)
        tern__push_pushed_session(r, own);
    round_free(r);
}

struct round *tern__push_round_new(struct tern_shard *shard, enum tern_push_trigger trig,
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

void tern__push_round_submit(struct round *r) {
    if (tern_store_submit(r->shard->server->store, &r->job) != 0)
        round_free(r);
}

void tern__push_publish_init(void) {
    tern_map_init(&erroring);
    inflight = 0;
    dropped = dropped_logged = drop_log_at = 0;
}

void tern__push_publish_fini(void) {
    tern_map_free(&erroring);
    tern__push_memo_prune(&called, 0, 1);
    if (dropped)
        tern_info(COMP, "%llu notifications were dropped because the push queue was full",
                  (unsigned long long)dropped);
}
