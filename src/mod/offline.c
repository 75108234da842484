/*
 * Offline storage (XEP-0160). A message for a user with no available
 * resource is written to the store (durably, group-committed with other
 * writes) before anything else happens to it; its sender hears about any
 * failure. At the user's next initial presence with non-negative priority
 * the messages are read back, sent to that resource with the <delay/>
 * stamped at storage time (XEP-0203), and deleted only once written.
 *
 * Invariant: at most one flush per account runs at a time (a process-wide
 * set guards it), so two resources coming online together never both get
 * the same messages.
 */
#include "mod/offline.h"

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
#include "server/c2s.h"
#include "server/module.h"
#include "server/router.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "store/store.h"
#include "xml/parser.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP          "offline"
#define NS_DELAY      "urn:xmpp:delay"
#define NS_MSGOFFLINE "msgoffline"

/* ---- storing ------------------------------------------------------------- */

struct store_req {
    struct tern_store_job job; /* store linkage */
    struct tern_shard *shard;  /* where done runs */
    char *user;                /* localpart */
    struct tern_xml *stanza;   /* the message with its <delay/> (a reference) */
    char *xml;                 /* serialized form written */
    size_t len;                /* bytes of xml */
    int64_t stamp;             /* ms since the epoch */
    int quota;                 /* offline.max_messages */
};

static int store_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct store_req *r = tern_store_container(job, struct store_req, job);
    struct tern_scram_creds creds;
    int rc = b->ops->account_get(b, r->user, &creds);
    tern_memzero(&creds, sizeof creds);
    if (rc)
        return rc;
    int64_t id;
    return b->ops->offline_put(b, r->user, r->xml, r->len, r->stamp, r->quota, &id);
}

static void store_done(struct tern_store_job *job, int err) {
    struct store_req *r = tern_store_container(job, struct store_req, job);
    struct tern_shard *shard = r->shard;
    if (err == 0) {
        struct tern_jid to = {r->user, shard->server->cfg->domain, NULL};
        struct tern_event_args ev = {TERN_EV_OFFLINE_STORED, shard, NULL, &to, r->stanza};
        tern_modules_fire(&ev);
    } else if (err == TERN_E_NOTFOUND) {
        tern_router_bounce(shard, r->stanza, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE);
    } else if (err == TERN_E_LIMIT) {
        tern_info(COMP, "%s@%s holds %d offline messages; refusing one more", r->user,
                  shard->server->cfg->domain, r->quota);
        tern_router_bounce(shard, r->stanza, TERN_ET_WAIT, TERN_SC_RESOURCE_CONSTRAINT);
    } else {
        tern_warn(COMP, "storing a message for %s failed: %s", r->user, tern_strerror(err));
        tern_router_bounce(shard, r->stanza, TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR);
    }
    tern_xml_unref(&r->stanza);
    free(r->xml);
    free(r->user);
    free(r);
}

static void utc_stamp(int64_t ms, char *out, size_t len) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Four-digit years: the format is XEP-0082's DateTime. */
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ms % 1000));
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tern_offline_store(struct tern_shard *shard, const struct tern_jid *to,
                        struct tern_xml *stanza) {
    const struct tern_config *cfg = shard->server->cfg;
    struct store_req *r = tern_calloc(1, sizeof *r);
    r->shard = shard;
    r->user = tern_strdup(to->local);
    r->stamp = now_ms();
    r->quota = cfg->offline_max_messages;

    /* XEP-0203: when it was stored, by whom; a message coming back from a
     * session that never acknowledged it keeps its first stamp. */
    if (!tern_xml_child(stanza, NS_DELAY, "delay")) {
        char stamp[64];
        utc_stamp(r->stamp, stamp, sizeof stamp);
        struct tern_xml *delay = tern_xml_add_el(stanza, NS_DELAY, "delay");
        tern_xml_set_attr(delay, "from", cfg->domain);
        tern_xml_set_attr(delay, "stamp", stamp);
        tern_xml_add_text(delay, "Offline storage", 15);
    }
    r->stanza = stanza;

    struct tern_buf b;
    tern_buf_init(&b, cfg->max_stanza_size * 2 + 4096);
    if (tern_xml_serialize(stanza, TERN_NS_CLIENT, &b) != 0) {
        tern_buf_free(&b);
        store_done(&r->job, TERN_E_IO);
        return;
    }
    r->len = b.len;
    r->xml = tern_buf_take(&b);
    r->job.run = store_run;
    r->job.done = store_done;
    r->job.write = 1;
    if (tern_store_submit(shard->server->store, &r->job) != 0)
        store_done(&r->job, TERN_E_IO);
}

/* ---- flushing at initial presence ------------------------------------------ */

/* Accounts with a flush under way, process-wide. */
static uv_mutex_t flushing_lock;
static struct tern_map flushing;

static int flushing_enter(const char *bare) {
    uv_mutex_lock(&flushing_lock);
    int busy = tern_map_gets(&flushing, bare) != NULL;
    if (!busy)
        tern_map_puts(&flushing, bare, (void *)1);
    uv_mutex_unlock(&flushing_lock);
    return busy ? TERN_E_BUSY : 0;
}

static void flushing_leave(const char *bare) {
    uv_mutex_lock(&flushing_lock);
    tern_map_dels(&flushing, bare);
    uv_mutex_unlock(&flushing_lock);
}

struct flush_req {
    struct tern_store_job job;     /* store linkage */
    struct tern_shard *shard;      /* where done runs */
    struct tern_session_ref ref;   /* the resource that came online */
    char *user;                    /* localpart */
    char *bare;                    /* user@domain, the flushing key */
    struct tern_offline_msg *msgs; /* read back (get) */
    size_t n;                      /* entries in msgs */
    int64_t upto;                  /* delete: highest id delivered */
    int deleting;                  /* second phase */
};

static void flush_free(struct flush_req *r) {
    flushing_leave(r->bare);
    tern_offline_msgs_free(r->msgs, r->n);
    free(r->user);
    free(r->bare);
    free(r);
}

static int flush_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct flush_req *r = tern_store_container(job, struct flush_req, job);
    if (r->deleting)
        return b->ops->offline_del(b, r->user, r->upto);
    return b->ops->offline_get(b, r->user, &r->msgs, &r->n);
}

static void flush_done(struct tern_store_job *job, int err) {
    struct flush_req *r = tern_store_container(job, struct flush_req, job);
    struct tern_shard *shard = r->shard;
    const struct tern_config *cfg = shard->server->cfg;
    if (r->deleting || err || r->n == 0) {
        if (err)
            tern_warn(COMP, "offline messages of %s: %s", r->bare, tern_strerror(err));
        flush_free(r);
        return;
    }
    /* The resource must still be here; otherwise they stay stored. */
    struct tern_c2s *c = tern_shard_find(shard, r->ref.uid);
    if (!c || tern_c2s_closing(c)) {
        flush_free(r);
        return;
    }
    char *full = tern_jid_full(tern_c2s_jid(c));
    for (size_t i = 0; i < r->n; i++) {
        struct tern_xml *m = NULL;
        if (tern_xml_parse_one(TERN_NS_CLIENT, r->msgs[i].xml, r->msgs[i].len,
                               cfg->max_stanza_size * 2 + 4096, cfg->max_depth + 2, &m) != 0) {
            tern_warn(COMP, "offline message %lld of %s is unreadable; dropped",
                      (long long)r->msgs[i].id, r->bare);
        } else {
            tern_c2s_send_take(c, m);
        }
        r->upto = r->msgs[i].id;
    }
    tern_info(COMP, "delivered %zu offline messages to %s", r->n, full);
    free(full);
    tern_offline_msgs_free(r->msgs, r->n);
    r->msgs = NULL;
    r->n = 0;
    r->deleting = 1;
    if (tern_store_submit(shard->server->store, &r->job) != 0)
        flush_free(r);
}

static void on_available(const struct tern_event_args *a) {
    struct tern_c2s_presence *p = tern_c2s_presence(a->session);
    if (p->priority < 0)
        return; /* XEP-0160 §3: only to a resource with non-negative priority */
    const char *bare = tern_c2s_bare(a->session);
    if (flushing_enter(bare) != 0)
        return;
    struct flush_req *r = tern_calloc(1, sizeof *r);
    r->shard = a->shard;
    r->ref.shard = a->shard->id;
    r->ref.uid = tern_c2s_uid(a->session);
    r->user = tern_strdup(a->jid->local);
    r->bare = tern_strdup(bare);
    r->job.run = flush_run;
    r->job.done = flush_done;
    r->job.write = 1; /* the delete phase writes; reading in the batch is fine */
    if (tern_store_submit(a->shard->server->store, &r->job) != 0)
        flush_free(r);
}

static int offline_init(struct tern_server *srv) {
    uv_mutex_init(&flushing_lock);
    tern_map_init(&flushing);
    return 0;
}

static void offline_fini(struct tern_server *srv) {
    tern_map_free(&flushing);
    uv_mutex_destroy(&flushing_lock);
}

static const struct tern_event_def offline_events[] = {
    {TERN_EV_AVAILABLE, on_available},
    {0, NULL},
};

static const char *const offline_features[] = {NS_MSGOFFLINE, NULL};

const struct tern_module tern_mod_offline = {
    .name = "offline",
    .init = offline_init,
    .fini = offline_fini,
    .events = offline_events,
    .server_features = offline_features,
};
