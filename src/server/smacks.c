/*
 * Stream management (XEP-0198): acknowledgements in both directions,
 * resumption, hibernation, and handing on what a session leaves unacked.
 *
 * Every stanza a session sends after <enable/> sits in its queue (with a
 * reference) until the client acknowledges it. When the transport dies the
 * session hibernates: it stays bound and available, and what is routed to it
 * only queues, until the client resumes it from a new connection (the new
 * connection adopts the session: c2s.c tern__c2s_adopt) or the resume
 * timeout passes. A session that ends for good hands every unacked message
 * on (tern__sm_handoff): to the account's other resources or offline
 * storage, so nothing is dropped silently.
 *
 * Resumption ids map to sessions in one process-wide table; a session is only
 * touched from its own shard's loop (today there is one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "mod/message.h"
#include "mod/offline.h"
#include "server/c2s_internal.h"
#include "server/module.h"
#include "server/router.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "server/sm_h.h"
#include "server/tls.h"
#include "xml/xml.h"

#define COMP  "sm"
#define NS_SM "urn:xmpp:sm:3"

static uv_once_t ids_once = UV_ONCE_INIT;
static uv_mutex_t ids_lock;
static struct tern_map ids; /* resumption id -> struct tern_c2s* */

/* Ended resumable sessions: id -> struct tombstone, so that a late
 * <resume/> learns the h of what the server had handled (XEP-0198 §5). The
 * table is bounded: past MAX_TOMBSTONES it starts over. */
#define MAX_TOMBSTONES 10000
struct tombstone {
    uint32_t h_in; /* stanzas the server handled from the client */
    char bare[];   /* the account, which alone may learn it */
};
static struct tern_map tombstones;

static void ids_init(void) {
    uv_mutex_init(&ids_lock);
    tern_map_init(&ids);
    tern_map_init(&tombstones);
}

static void free_tombstone(const void *k, size_t kl, void *v, void *ud) {
    free(v);
}

/* ids_lock held */
static void bury(const struct tern_c2s *c) {
    if (!c->bare)
        return;
    if (tombstones.count >= MAX_TOMBSTONES) {
        tern_map_each(&tombstones, free_tombstone, NULL);
        tern_map_free(&tombstones);
    }
    size_t n = strlen(c->bare) + 1;
    struct tombstone *t = tern_malloc(sizeof *t + n);
    t->h_in = c->sm.h_in;
    memcpy(t->bare, c->bare, n);
    free(tern_map_puts(&tombstones, c->sm.id, t));
}

/* h of an ended session of bare with this id: 0 and *h, or -1. */
static int dug_up(const char *id, const char *bare, uint32_t *h) {
    uv_once(&ids_once, ids_init);
    uv_mutex_lock(&ids_lock);
    struct tombstone *t = tern_map_gets(&tombstones, id);
    int rc = t && strcmp(t->bare, bare) == 0 ? 0 : -1;
    if (rc == 0)
        *h = t->h_in;
    uv_mutex_unlock(&ids_lock);
    return rc;
}

static const struct tern_config *cfg_of(const struct tern_c2s *c) {
    return c->shard->server->cfg;
}

static void fire(struct tern_c2s *c, enum tern_event ev, const struct tern_xml *stanza) {
    struct tern_event_args a = {ev, c->shard, c, &c->jid, stanza};
    tern_modules_fire(&a);
}

void tern__sm_features(struct tern_c2s *c, struct tern_buf *out) {
    if (cfg_of(c)->sm_enabled)
        tern_buf_adds(out, "<sm xmlns='" NS_SM "'/>");
}

static void failed(struct tern_c2s *c, const char *cond, const char *extra) {
    struct tern_buf b;
    tern_buf_init(&b, 512);
    tern_buf_printf(&b,
                    "<failed xmlns='" NS_SM "'%s><%s xmlns='" TERN_NS_STANZA_ERRORS "'/></failed>",
                    extra ? extra : "", cond);
    tern__c2s_write(c, b.data, b.len);
    tern_buf_free(&b);
}

/* ---- timer: ack requests, dead peers, hibernation expiry ---------------------- */

static void send_r(struct tern_c2s *c);
static void on_timer(uv_timer_t *t);

static void arm(struct tern_c2s *c) {
    struct tern_sm *sm = &c->sm;
    const struct tern_config *cfg = cfg_of(c);
    if (!sm->timer_open)
        return;
    uint64_t now = uv_now(c->shard->loop);
    if (sm->hibernating)
        return; /* the expiry timer runs */
    if (sm->r_sent_at) {
        uint64_t due = sm->r_sent_at + (uint64_t)cfg->sm_ack_timeout * 1000;
        uv_timer_start(&sm->timer, on_timer, due > now ? due - now : 0, 0);
    } else if (sm->queued) {
        if (!uv_is_active((uv_handle_t *)&sm->timer)) {
            uv_timer_start(&sm->timer, on_timer, (uint64_t)cfg->sm_request_interval * 1000, 0);
        }
    } else {
        uv_timer_stop(&sm->timer);
    }
}

static void on_timer(uv_timer_t *t) {
    struct tern_c2s *c = t->data;
    struct tern_sm *sm = &c->sm;
    if (sm->hibernating) {
        tern_info(COMP, "%s: hibernated session %s/%s expired after %d s (%u unacked)", c->peer,
                  c->bare, c->jid.resource, sm->timeout, sm->queued);
        fire(c, TERN_EV_SM_EXPIRED, NULL);
        tern__c2s_teardown(c);
        return;
    }
    if (c->closing)
        return;
    if (sm->r_sent_at) {
        uint64_t waited = uv_now(c->shard->loop) - sm->r_sent_at;
        tern_info(COMP,
                  "%s: %s/%s did not acknowledge within %llu s; treating the connection "
                  "as dead",
                  c->peer, c->bare, c->jid.resource, (unsigned long long)(waited / 1000));
        fire(c, TERN_EV_SM_ACK_OVERDUE, NULL);
        if (!tern__sm_hibernate(c))
            tern_c2s_close(c, TERN_SE_CONNECTION_TIMEOUT, "no acknowledgement");
        return;
    }
    if (sm->queued)
        send_r(c);
}

static void send_r(struct tern_c2s *c) {
    struct tern_sm *sm = &c->sm;
    static const char r[] = "<r xmlns='" NS_SM "'/>";
    tern__c2s_write(c, r, sizeof r - 1);
    sm->since_r = 0;
    if (!sm->r_sent_at)
        sm->r_sent_at = uv_now(c->shard->loop);
    arm(c);
}

/* ---- the queue ------------------------------------------------------------------ */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void push(struct tern_sm_entry **head, struct tern_sm_entry **tail,
                 struct tern_xml *stanza) {
    struct tern_sm_entry *e = tern_malloc(sizeof *e);
    e->next = NULL;
    e->stanza = stanza;
    e->stamp = now_ms();
    if (*tail)
        (*tail)->next = e;
    else
        *head = e;
    *tail = e;
}

/* Drop n acknowledged entries. */
static void ack(struct tern_sm *sm, uint32_t n) {
    while (n-- && sm->head) {
        struct tern_sm_entry *e = sm->head;
        sm->head = e->next;
        if (!sm->head)
            sm->tail = NULL;
        e->stanza->flags |= TERN_XML_F_RECEIVED; /* the client has it */
        tern_xml_unref(&e->stanza);
        free(e);
        sm->queued--;
    }
}

void tern__sm_send_take(struct tern_c2s *c, struct tern_xml *stanza) {
    struct tern_sm *sm = &c->sm;
    if (!sm->enabled) {
        if (!c->closing && !c->transport_gone) {
            tern__c2s_write_stanza(c, stanza);
            stanza->flags |= TERN_XML_F_RECEIVED; /* as far as we can ever know */
        }
        tern_xml_unref(&stanza);
        return;
    }
    push(&sm->head, &sm->tail, stanza);
    sm->h_out++;
    sm->queued++;
    const struct tern_config *cfg = cfg_of(c);
    if (sm->hibernating) {
        fire(c, TERN_EV_SM_QUEUED, stanza);
        if (sm->queued > (uint32_t)cfg->sm_max_queue) {
            tern_warn(COMP,
                      "%s/%s: %u stanzas queued while hibernated (sm.max_queue); ending "
                      "the session",
                      c->bare, c->jid.resource, sm->queued);
            tern__c2s_teardown(c);
        }
        return;
    }
    if (c->closing || c->transport_gone)
        return; /* kept for the hand-off */
    tern__c2s_write_stanza(c, stanza);
    if (sm->queued > (uint32_t)cfg->sm_max_queue) {
        tern_warn(COMP, "%s: %s/%s leaves %u stanzas unacknowledged (sm.max_queue)", c->peer,
                  c->bare, c->jid.resource, sm->queued);
        tern_c2s_close(c, TERN_SE_POLICY_VIOLATION, "too many unacknowledged stanzas");
        return;
    }
    if (++sm->since_r >= (uint32_t)cfg->sm_request_every && !sm->r_sent_at)
        send_r(c);
    else
        arm(c);
}

void tern__sm_count_in(struct tern_c2s *c) {
    if (c->sm.enabled)
        c->sm.h_in++;
}

/* ---- enable, r, a ------------------------------------------------------------------ */

static void register_id(struct tern_c2s *c) {
    uv_once(&ids_once, ids_init);
    uv_mutex_lock(&ids_lock);
    tern_map_puts(&ids, c->sm.id, c);
    uv_mutex_unlock(&ids_lock);
}

static struct tern_c2s *lookup_id(const char *id) {
    uv_once(&ids_once, ids_init);
    uv_mutex_lock(&ids_lock);
    struct tern_c2s *c = tern_map_gets(&ids, id);
    uv_mutex_unlock(&ids_lock);
    return c;
}

static void open_timer(struct tern_c2s *c) {
    if (c->sm.timer_open)
        return;
    uv_timer_init(c->shard->loop, &c->sm.timer);
    c->sm.timer.data = c;
    c->sm.timer_open = 1;
    tern__c2s_ref(c); /* the handle holds the struct until closed */
}

static void handle_enable(struct tern_c2s *c, struct tern_xml *el) {
    const struct tern_config *cfg = cfg_of(c);
    if (!cfg->sm_enabled) {
        failed(c, "feature-not-implemented", NULL);
        return;
    }
    if (!c->bound || c->sm.enabled) {
        /* XEP-0198 §3: after binding, once */
        failed(c, "unexpected-request", NULL);
        return;
    }
    struct tern_sm *sm = &c->sm;
    const char *resume = tern_xml_attr(el, "resume");
    sm->resumable = resume && (!strcmp(resume, "true") || !strcmp(resume, "1"));
    sm->enabled = 1;
    open_timer(c);
    struct tern_buf b;
    tern_buf_init(&b, 512);
    if (sm->resumable) {
        uint8_t rnd[16];
        tern_random_bytes(rnd, sizeof rnd);
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(sm->id + 2 * i, 3, "%02x", rnd[i]);
        uint32_t max = 0;
        int timeout = cfg->sm_resume_timeout;
        if (tern_sm_h_parse(tern_xml_attr(el, "max"), &max) == 0 && max > 0)
            timeout =
                max < (uint32_t)cfg->sm_max_resume_timeout ? (int)max : cfg->sm_max_resume_timeout;
        if (timeout > cfg->sm_max_resume_timeout)
            timeout = cfg->sm_max_resume_timeout;
        sm->timeout = timeout;
        register_id(c);
        tern_buf_printf(&b, "<enabled xmlns='" NS_SM "' id='%s' resume='true' max='%d'/>", sm->id,
                        timeout);
    } else {
        tern_buf_adds(&b, "<enabled xmlns='" NS_SM "'/>");
    }
    tern__c2s_write(c, b.data, b.len);
    tern_buf_free(&b);
    tern_debug(COMP, "%s: stream management on for %s/%s%s", c->peer, c->bare, c->jid.resource,
               sm->resumable ? " (resumable)" : "");
}

/* XEP-0198 §4: an h the client cannot have seen is a stream error. */
static void too_high(struct tern_c2s *c, uint32_t h) {
    char text[160], extra[160];
    snprintf(text, sizeof text, "acknowledged %u stanzas, %u were sent", h, c->sm.h_out);
    snprintf(extra, sizeof extra,
             "<handled-count-too-high xmlns='" NS_SM "' h='%u' send-count='%u'/>", h, c->sm.h_out);
    tern_info(COMP, "%s: %s", c->peer, text);
    tern__c2s_close_with(c, TERN_SE_UNDEFINED_CONDITION, text, extra);
}

static void handle_a(struct tern_c2s *c, struct tern_xml *el) {
    struct tern_sm *sm = &c->sm;
    uint32_t h;
    if (tern_sm_h_parse(tern_xml_attr(el, "h"), &h) != 0) {
        tern_c2s_close(c, TERN_SE_BAD_FORMAT, "<a/> needs a decimal h");
        return;
    }
    if (!tern_sm_h_valid(h, sm->acked, sm->queued)) {
        too_high(c, h);
        return;
    }
    ack(sm, tern_sm_h_delta(h, sm->acked));
    sm->acked = h;
    sm->r_sent_at = 0;
    if (sm->timer_open)
        uv_timer_stop(&sm->timer);
    arm(c);
}

/* ---- resumption ---------------------------------------------------------------------- */

static void handle_resume(struct tern_c2s *c, struct tern_xml *el) {
    if (c->bound) {
        failed(c, "unexpected-request", NULL); /* XEP-0198 §5: before binding only */
        return;
    }
    const char *previd = tern_xml_attr(el, "previd");
    uint32_t h;
    if (!previd || tern_sm_h_parse(tern_xml_attr(el, "h"), &h) != 0) {
        failed(c, "bad-request", NULL);
        return;
    }
    struct tern_c2s *old = lookup_id(previd);
    /* Only the account that owns the session may resume it; anyone else
     * learns nothing about it. */
    if (!old || old == c || !old->bound || old->torn_down || !old->sm.resumable ||
        old->shard != c->shard || strcmp(old->bare, c->bare) != 0) {
        uint32_t gone_h;
        if (!old && dug_up(previd, c->bare, &gone_h) == 0) {
            /* XEP-0198 §5: it expired; say how much of it the server handled */
            char extra[64];
            snprintf(extra, sizeof extra, " h='%u'", gone_h);
            tern_info(COMP, "%s: %s tried to resume ended session %.40s", c->peer, c->bare, previd);
            failed(c, "item-not-found", extra);
            return;
        }
        tern_info(COMP, "%s: %s tried to resume unknown session %.40s", c->peer, c->bare, previd);
        failed(c, "item-not-found", NULL);
        return;
    }
    if (!tern_sm_h_valid(h, old->sm.acked, old->sm.queued)) {
        char extra[64];
        snprintf(extra, sizeof extra, " h='%u'", old->sm.h_in);
        failed(c, "undefined-condition", extra);
        return;
    }
    ack(&old->sm, tern_sm_h_delta(h, old->sm.acked));
    old->sm.acked = h;
    tern__c2s_adopt(c, old);

    struct tern_sm *sm = &c->sm;
    open_timer(c);
    char out[160];
    int n = snprintf(out, sizeof out, "<resumed xmlns='" NS_SM "' previd='%s' h='%u'/>", sm->id,
                     sm->h_in);
    tern__c2s_write(c, out, (size_t)n);
    /* Re-send what the client has not seen, in order; it stays queued. */
    for (struct tern_sm_entry *e = sm->head; e; e = e->next)
        tern__c2s_write_stanza(c, e->stanza);
    tern_info(COMP, "%s: resumed %s/%s, re-sent %u stanzas", c->peer, c->bare, c->jid.resource,
              sm->queued);
    sm->r_sent_at = 0;
    if (sm->queued)
        send_r(c);
    fire(c, TERN_EV_SM_RESUMED, NULL);
}

void tern__sm_handle(struct tern_c2s *c, struct tern_xml *el) {
    if (strcmp(el->name, "enable") == 0) {
        handle_enable(c, el);
    } else if (strcmp(el->name, "resume") == 0) {
        handle_resume(c, el);
    } else if (!c->sm.enabled) {
        failed(c, "unexpected-request", NULL);
    } else if (strcmp(el->name, "r") == 0) {
        char out[64];
        int n = snprintf(out, sizeof out, "<a xmlns='" NS_SM "' h='%u'/>", c->sm.h_in);
        tern__c2s_write(c, out, (size_t)n);
    } else if (strcmp(el->name, "a") == 0) {
        handle_a(c, el);
    } else {
        tern_c2s_close(c, TERN_SE_UNSUPPORTED_STANZA_TYPE, NULL);
    }
}

/* ---- hibernation and the end ------------------------------------------------------------ */

int tern__sm_hibernate(struct tern_c2s *c) {
    struct tern_sm *sm = &c->sm;
    if (!sm->enabled || !sm->resumable || !c->bound || c->closing || c->torn_down)
        return 0;
    tern__csi_flush(c); /* held stanzas join the queue: unacked like the rest */
    tern__c2s_drop_transport(c);
    sm->hibernating = 1;
    sm->r_sent_at = 0;
    uv_timer_stop(&sm->timer);
    uv_timer_start(&sm->timer, on_timer, (uint64_t)sm->timeout * 1000, 0);
    tern_info(COMP, "%s: %s/%s hibernated for %d s with %u unacked stanzas", c->peer, c->bare,
              c->jid.resource, sm->timeout, sm->queued);
    fire(c, TERN_EV_SM_HIBERNATED, NULL);
    return 1;
}

static int has_other_available(struct tern_c2s *c) {
    struct tern_session_info info[64];
    size_t n = tern_sessions_list_info(c->shard->server->sessions, c->bare, info, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        if (info[i].ref.uid != c->uid && info[i].available && info[i].priority >= 0)
            return 1;
    return 0;
}

/* XEP-0203: when it first reached the server, so a late copy says so. */
static void add_delay(struct tern_c2s *c, struct tern_xml *st, int64_t ms) {
    if (tern_xml_child(st, "urn:xmpp:delay", "delay"))
        return;
    char stamp[64];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100,
             tm.tm_min % 100, tm.tm_sec % 100, (int)(ms % 1000));
    struct tern_xml *d = tern_xml_add_el(st, "urn:xmpp:delay", "delay");
    tern_xml_set_attr(d, "from", cfg_of(c)->domain);
    tern_xml_set_attr(d, "stamp", stamp);
}

/*
 * One unacked stanza of an ending session; takes it. A message with a body
 * goes, stamped with <delay/>, to the account's other available resources
 * when there are any (RFC 6121 §8.5.2 rules for its bare JID), else to
 * offline storage; not if it went to several resources in the first place
 * and another is still there. IQ requests get an error; the rest is not
 * something a person would miss.
 */
static void hand_on(struct tern_c2s *c, struct tern_sm_entry *e, int others) {
    struct tern_shard *shard = c->shard;
    struct tern_xml *st = e->stanza;
    const char *type = tern_xml_attr(st, "type");
    if (strcmp(st->name, "iq") == 0) {
        if (type && (!strcmp(type, "get") || !strcmp(type, "set")))
            tern_router_bounce(shard, st, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE);
        tern_xml_unref(&st);
        return;
    }
    if (strcmp(st->name, "message") != 0 || !tern_xml_child(st, NULL, "body") ||
        (type &&
         (!strcmp(type, "error") || !strcmp(type, "groupchat") || !strcmp(type, "headline")))) {
        tern_xml_unref(&st);
        return;
    }
    if ((st->flags & TERN_XML_F_MULTI) && (others || (st->flags & TERN_XML_F_RECEIVED))) {
        tern_xml_unref(&st); /* another resource got it too */
        return;
    }
    struct tern_jid to;
    const char *to_s = tern_xml_attr(st, "to");
    if (!to_s || tern_jid_parse(&to, to_s) != 0) {
        tern_xml_unref(&st);
        return;
    }
    free(to.resource);
    to.resource = NULL;
    add_delay(c, st, e->stamp);
    if (others && !shard->server->shutting_down)
        tern_message_deliver(shard, &to, st);
    else
        tern_offline_store(shard, &to, st);
    tern_jid_free(&to);
}

void tern__sm_handoff(struct tern_c2s *c) {
    struct tern_sm *sm = &c->sm;
    if (!sm->head)
        return;
    int others = has_other_available(c);
    uint32_t n = sm->queued;
    struct tern_sm_entry *e = sm->head;
    sm->head = sm->tail = NULL;
    sm->queued = 0;
    while (e) {
        struct tern_sm_entry *next = e->next;
        hand_on(c, e, others);
        free(e);
        e = next;
    }
    tern_info(COMP, "%s/%s ended with %u unacked stanzas; messages handed on", c->bare,
              c->jid.resource ? c->jid.resource : "", n);
}

static void on_timer_closed(uv_handle_t *h) {
    tern__c2s_unref(h->data);
}

void tern__sm_release(struct tern_c2s *c) {
    struct tern_sm *sm = &c->sm;
    if (sm->id[0]) {
        uv_once(&ids_once, ids_init);
        uv_mutex_lock(&ids_lock);
        if (tern_map_gets(&ids, sm->id) == c) {
            tern_map_dels(&ids, sm->id);
            if (sm->resumable)
                bury(c);
        }
        uv_mutex_unlock(&ids_lock);
        sm->id[0] = '\0';
    }
    while (sm->head) { /* normally empty: the hand-off took everything */
        struct tern_sm_entry *e = sm->head;
        sm->head = e->next;
        tern_xml_unref(&e->stanza);
        free(e);
    }
    sm->tail = NULL;
    sm->queued = 0;
    if (sm->timer_open && !uv_is_closing((uv_handle_t *)&sm->timer)) {
        uv_timer_stop(&sm->timer);
        uv_close((uv_handle_t *)&sm->timer, on_timer_closed);
    }
}

/* Used by tern__c2s_adopt: the id now names the adopting connection. */
void tern__sm_rebind_id(struct tern_c2s *c) {
    if (c->sm.id[0])
        register_id(c);
}
