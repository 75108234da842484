/*
 * Deleting an account while the server runs. The account's sessions end
 * (their closing broadcasts unavailable to its contacts through the presence
 * module, as any logout does), then one store job removes it from every
 * roster and deletes its roster, offline messages and keys together
 * (tern_store_account_purge). Once that is durable, every user that held it
 * gets a roster push removing it, and the presence caches forget it.
 */
#include "mod/account.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "mod/roster.h"
#include "server/module.h"
#include "server/router.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "store/store.h"
#include "xmpp/jid.h"

#define COMP     "account"
#define MAX_KICK 64

struct delete_req {
    struct tern_store_job job;  /* store linkage */
    struct tern_shard *shard;   /* where done runs */
    char *user;                 /* localpart */
    char *bare;                 /* user@domain */
    char **holders;             /* users whose roster lost the item */
    uint64_t *versions;         /* their new roster versions */
    size_t n;                   /* entries in holders */
    tern_account_deleted_fn cb; /* completion */
    void *ud;                   /* its argument */
};

static int delete_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct delete_req *r = tern_store_container(job, struct delete_req, job);
    return tern_store_account_purge(b, r->user, r->bare, &r->holders, &r->versions, &r->n);
}

static void delete_done(struct tern_store_job *job, int err) {
    struct delete_req *r = tern_store_container(job, struct delete_req, job);
    struct tern_shard *shard = r->shard;
    if (err == 0) {
        tern__views_forget(r->bare);
        struct tern_roster_item gone = {.jid = r->bare};
        const char *domain = shard->server->cfg->domain;
        for (size_t i = 0; i < r->n; i++) {
            size_t len = strlen(r->holders[i]) + strlen(domain) + 2;
            char *holder = tern_malloc(len);
            snprintf(holder, len, "%s@%s", r->holders[i], domain);
            tern__roster_push(shard, holder, &gone, 1, r->versions[i]);
            free(holder);
        }
        struct tern_jid j = {r->user, (char *)domain, NULL};
        struct tern_event_args ev = {TERN_EV_ACCOUNT_DELETED, shard, NULL, &j, NULL};
        tern_modules_fire(&ev);
        tern_info(COMP, "account %s deleted; removed from %zu rosters", r->bare, r->n);
    } else if (err != TERN_E_NOTFOUND) {
        tern_warn(COMP, "deleting %s failed: %s", r->bare, tern_strerror(err));
    }
    r->cb(r->ud, err);
    tern_store_free_list(r->holders, r->n);
    free(r->versions);
    free(r->user);
    free(r->bare);
    free(r);
}

void tern_account_delete(struct tern_shard *shard, const char *user, tern_account_deleted_fn cb,
                         void *ud) {
    struct tern_server *srv = shard->server;
    struct delete_req *r = tern_calloc(1, sizeof *r);
    r->shard = shard;
    r->user = tern_strdup(user);
    size_t len = strlen(user) + strlen(srv->cfg->domain) + 2;
    r->bare = tern_malloc(len);
    snprintf(r->bare, len, "%s@%s", user, srv->cfg->domain);
    r->cb = cb;
    r->ud = ud;

    /* RFC 6120 §4.9.3.12: the account is no longer authorized. */
    struct tern_session_ref refs[MAX_KICK];
    size_t n = tern_sessions_list(srv->sessions, r->bare, refs, MAX_KICK);
    for (size_t i = 0; i < n && i < MAX_KICK; i++)
        tern_router_kick(shard, refs[i], TERN_SE_NOT_AUTHORIZED);

    r->job.run = delete_run;
    r->job.done = delete_done;
    r->job.write = 1;
    if (tern_store_submit(srv->store, &r->job) != 0)
        delete_done(&r->job, TERN_E_CLOSED);
}
