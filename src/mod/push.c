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
 * policy's (push_policy.h). This file owns when: the triggers and the
 * sessions' state. push_publish.c reads the registrations and publishes,
 * push_enable.c handles <enable/>, <disable/> and the content options,
 * push_start.c does push.on_start. Publishing never blocks routing:
 * registrations are read by a store job, publishes are tracked IQs
 * (iqtrack.c), at most push.max_queue in flight.
 *
 * State (session trackers, counters) is per process and only touched from
 * loop threads; like iqtrack.c, whose requests it makes, it assumes one
 * shard today (docs/internals/push.md).
 */
#include "mod/push.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/config.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "mod/disco.h"
#include "mod/push_internal.h"
#include "server/c2s.h"
#include "server/module.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP           "push"
#define BATCH_MS       1000   /* notifications of one session wait this long for more */
#define SUPPRESS_MS    60000  /* how long a handed-off, already notified message is remembered */
#define SUPPRESS_LIMIT 100000 /* most such messages remembered at once */

const struct tern_push_policy *tern__push_policy = &tern_push_default_policy;

void tern_push_set_policy(const struct tern_push_policy *p) {
    tern__push_policy = p ? p : &tern_push_default_policy;
}

/* ---- handed-off messages already notified ------------------------------------------ */

/*
 * When a session that was pushed for ends, its unacknowledged messages go
 * to offline storage (smacks.c hand-off) and come back here as
 * TERN_EV_OFFLINE_STORED, the same stanza objects. Its device was told
 * about them already; remembering them (by identity, with a reference)
 * keeps that device from being told twice.
 */
static struct tern__push_memo suppressed; /* key: the resource of the device told */

/* ---- sessions: hibernated queues and overdue acknowledgements --------------------------- */

static struct tern_map sessions; /* session uid (8 bytes) -> struct sess* */

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
    if (tern__push_policy->classify(st, &item) == TERN_PUSH_NONE)
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
    uint64_t delay = (uint64_t)tern__push_cfg(s->shard)->push_ack_delay * 1000;
    uint64_t now = uv_now(s->shard->loop);
    uint64_t waited = info.r_sent_at && now > info.r_sent_at ? now - info.r_sent_at : 0;
    if (w.fresh && (info.hibernating || force || (info.r_sent_at && waited >= delay))) {
        s->pushed = 1;
        s->pushed_h = w.newest;
        s->hib_pushed |= info.hibernating;
        /* A device known to have no registration gets nothing, unless it
         * is a call, which goes to the account's other devices too. */
        if (s->has_reg != 0 || w.call) {
            struct round *r = tern__push_round_new(s->shard, TERN_PUSH_T_SESSION, s->user, s->bare);
            r->own = tern_strdup(s->resource);
            r->own_uid = s->uid;
            r->sum = w.sum;
            memset(&w.sum, 0, sizeof w.sum);
            r->call = w.call ? tern_xml_ref((struct tern_xml *)w.call) : NULL;
            tern__push_round_submit(r);
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
    struct round *r = tern__push_round_new(s->shard, TERN_PUSH_T_SESSION, s->user, s->bare);
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
    tern__push_round_submit(r);
}

/* The session's expiry moved to ms from now: (re)arm the wake-up before it. */
static void wake_arm(struct sess *s, uint64_t ms) {
    uint64_t now = uv_now(s->shard->loop);
    uint64_t before = (uint64_t)tern__push_cfg(s->shard)->push_wake_before_expiry * 1000;
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
void tern__push_pushed_session(struct round *r, int own) {
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
void tern__push_hibernation_found(struct round *r, int has_reg) {
    struct sess *s = tern_map_get(&sessions, &r->own_uid, sizeof r->own_uid);
    struct tern_c2s *c = s ? tern_shard_find(s->shard, s->uid) : NULL;
    int secs = tern__push_cfg(r->shard)->push_max_hibernation;
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
    struct round *r = tern__push_round_new(a->shard, TERN_PUSH_T_SESSION, a->jid->local, bare);
    free(bare);
    tern_push_summary_add(&r->sum, item);
    r->call = tern_xml_ref((struct tern_xml *)a->stanza);
    tern__push_round_submit(r);
}

static void on_delivered(const struct tern_event_args *a) {
    struct tern_c2s_sm_info info;
    struct tern_push_item item;
    if (!a->session || !a->stanza || !a->jid || !a->jid->local || a->shard->server->shutting_down)
        return;
    enum tern_push_class cls = tern__push_policy->classify(a->stanza, &item);
    if (cls == TERN_PUSH_CALL)
        ring_others(a, &item);
    tern_c2s_sm_info(a->session, &info);
    if (!info.enabled || info.hibernating || cls == TERN_PUSH_NONE)
        return;
    struct sess *s = sess_get(a, 1);
    if (s && !uv_is_active((uv_handle_t *)&s->timer))
        uv_timer_start(&s->timer, on_sess_timer,
                       (uint64_t)tern__push_cfg(a->shard)->push_ack_delay * 1000, 0);
}

static void on_queued(const struct tern_event_args *a) {
    struct tern_push_item item;
    if (!a->session || !a->stanza || a->shard->server->shutting_down)
        return;
    enum tern_push_class cls = tern__push_policy->classify(a->stanza, &item);
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
    if ((tern__push_cfg(a->shard)->push_max_hibernation > 0 ||
         tern__push_cfg(a->shard)->push_wake_before_expiry > 0) &&
        !s->extended) {
        struct round *r = tern__push_round_new(a->shard, TERN_PUSH_T_SESSION, s->user, s->bare);
        r->own = tern_strdup(s->resource);
        r->own_uid = s->uid;
        r->lookup = 1;
        tern__push_round_submit(r);
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
        uv_timer_start(&s->timer, on_sess_timer,
                       (uint64_t)tern__push_cfg(a->shard)->push_ack_delay * 1000, 0);
}

static int remember_told(const struct tern_xml *st, uint32_t h, int64_t stamp, void *ud) {
    struct sess *s = ud;
    struct tern_push_item item;
    (void)stamp;
    if ((int32_t)(h - s->pushed_h) > 0 || suppressed.n >= SUPPRESS_LIMIT)
        return 1;
    if (tern__push_policy->classify(st, &item) == TERN_PUSH_NONE)
        return 0; /* never stored offline as news, nothing to remember */
    tern__push_memo_add(&suppressed, st, tern_strdup(s->resource),
                        uv_now(s->shard->loop) + SUPPRESS_MS, SUPPRESS_LIMIT);
    return 0;
}

static void on_closing(const struct tern_event_args *a) {
    if (a->shard->server->shutting_down && tern__push_cfg(a->shard)->push_on_start)
        tern__push_mark_at_shutdown(a);
    struct sess *s = a->session ? sess_get(a, 0) : NULL;
    if (!s)
        return;
    tern_map_del(&sessions, &s->uid, sizeof s->uid);
    /* Called before the hand-off (c2s.c teardown): the queue is still there. */
    if (s->pushed && !a->shard->server->shutting_down) {
        tern__push_memo_prune(&suppressed, uv_now(a->shard->loop), 0);
        tern_c2s_sm_unacked(a->session, remember_told, s);
    }
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->wake);
    uv_close((uv_handle_t *)&s->timer, sess_closed);
    uv_close((uv_handle_t *)&s->wake, sess_closed);
}

void tern__push_session_has_reg(uint64_t uid, int has) {
    struct sess *s = tern_map_get(&sessions, &uid, sizeof uid);
    if (s)
        s->has_reg = has;
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
    char *told = tern__push_memo_take(&suppressed, a->stanza);
    if (tern__push_policy->classify(a->stanza, &item) == TERN_PUSH_NONE) {
        free(told);
        return;
    }
    char *bare = tern_jid_bare(a->jid);
    struct round *r = tern__push_round_new(a->shard, TERN_PUSH_T_OFFLINE, a->jid->local, bare);
    free(bare);
    tern_push_summary_add(&r->sum, &item);
    r->told = told;
    if (item.cls == TERN_PUSH_CALL)
        r->call = tern_xml_ref((struct tern_xml *)a->stanza);
    tern__push_round_submit(r);
}

/* ---- the module ------------------------------------------------------------------------- */

static int push_init(struct tern_server *srv) {
    tern_map_init(&sessions);
    tern__push_publish_init();
    tern__push_start(srv);
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
    tern__push_memo_prune(&suppressed, 0, 1);
    tern__push_publish_fini();
    tern__push_start_fini();
}

static const struct tern_iq_def push_iqs[] = {
    {TERN_NS_PUSH, TERN_IQ_TO_SERVER | TERN_IQ_TO_ACCOUNT, tern__push_on_iq},
    {TERN_NS_DISCO_INFO, TERN_IQ_TO_ACCOUNT,
     tern__push_on_disco_info}, /* before the disco module's */
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
