/*
 * What the server answers about itself and on its accounts' behalf:
 * service discovery (XEP-0030), ping (XEP-0199), software version
 * (XEP-0092). Features come from every module's table, so a module that
 * implements a protocol also advertises it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "mod/disco.h"
#include "server/module.h"
#include "server/router.h"
#include "server/server.h"
#include "server/shard.h"
#include "server/stanza.h"
#include "store/store.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define NS_DISCO_INFO  TERN_NS_DISCO_INFO
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_VERSION     "jabber:iq:version"

static void reply_error(struct tern_iq_ctx *ctx, enum tern_error_type type,
                        enum tern_stanza_cond cond) {
    struct tern_stanza_error e = {type, cond, NULL};
    tern_module_reply(ctx, tern_stanza_error_reply(ctx->iq, &e));
}

static void add_feature(struct tern_xml *q, const char *var) {
    struct tern_xml *f = tern_xml_add_el(q, NULL, "feature");
    tern_xml_set_attr(f, "var", var);
}

struct tern_xml *tern_disco_info_result(const struct tern_xml *iq, int account) {
    struct tern_xml *r = tern_stanza_result(iq);
    struct tern_xml *q = tern_xml_add_el(r, NS_DISCO_INFO, "query");
    struct tern_xml *id = tern_xml_add_el(q, NULL, "identity");
    if (account) {
        tern_xml_set_attr(id, "category", "account");
        tern_xml_set_attr(id, "type", "registered");
    } else {
        tern_xml_set_attr(id, "category", "server");
        tern_xml_set_attr(id, "type", "im");
        tern_xml_set_attr(id, "name", "Tern");
    }
    add_feature(q, NS_DISCO_INFO);
    add_feature(q, NS_DISCO_ITEMS);
    for (const struct tern_module *const *m = tern_modules; *m; m++) {
        const char *const *f = account ? (*m)->account_features : (*m)->server_features;
        for (; f && *f; f++)
            add_feature(q, *f);
    }
    return r;
}

/* The domain's items are the external components (XEP-0114), connected or not. */
static struct tern_xml *items_result(const struct tern_iq_ctx *ctx, int account) {
    const struct tern_config *cfg = ctx->shard->server->cfg;
    struct tern_xml *r = tern_stanza_result(ctx->iq);
    struct tern_xml *q = tern_xml_add_el(r, NS_DISCO_ITEMS, "query");
    for (size_t i = 0; !account && i < cfg->ncomponents; i++) {
        struct tern_xml *item = tern_xml_add_el(q, NULL, "item");
        tern_xml_set_attr(item, "jid", cfg->component_domains[i]);
    }
    return r;
}

/* The answer to a query, once we know the addressed account exists. */
static void answer(struct tern_iq_ctx *ctx, int account) {
    const char *ns = ctx->payload->ns;
    if (strcmp(ns, TERN_NS_PING) == 0)
        tern_module_reply(ctx, tern_stanza_result(ctx->iq));
    else if (strcmp(ns, NS_DISCO_INFO) == 0)
        tern_module_reply(ctx, tern_disco_info_result(ctx->iq, account));
    else if (strcmp(ns, NS_DISCO_ITEMS) == 0)
        tern_module_reply(ctx, items_result(ctx, account));
}

/* ---- on an account's behalf: only if it exists (RFC 6121 §8.5.1) ------------ */

struct exists_req {
    struct tern_store_job job; /* store linkage */
    struct tern_shard *shard;  /* where done runs */
    struct tern_xml *iq;       /* the request (a reference) */
    struct tern_jid from;      /* requester */
    struct tern_jid to;        /* the account */
};

static int exists_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct exists_req *r = tern_store_container(job, struct exists_req, job);
    struct tern_scram_creds creds;
    int rc = b->ops->account_get(b, r->to.local, &creds);
    tern_memzero(&creds, sizeof creds);
    return rc;
}

static void exists_done(struct tern_store_job *job, int err) {
    struct exists_req *r = tern_store_container(job, struct exists_req, job);
    struct tern_iq_ctx ctx = {
        .shard = r->shard,
        .from = &r->from,
        .to = &r->to,
        .iq = r->iq,
        .payload = tern_xml_first_el(r->iq),
        .target = TERN_IQ_TO_ACCOUNT,
    };
    if (err == 0)
        answer(&ctx, 1);
    else if (err == TERN_E_NOTFOUND)
        reply_error(&ctx, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE);
    else
        reply_error(&ctx, TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR);
    tern_xml_unref(&r->iq);
    tern_jid_free(&r->from);
    tern_jid_free(&r->to);
    free(r);
}

static enum tern_hook_result on_query(struct tern_iq_ctx *ctx) {
    const char *type = tern_xml_attr(ctx->iq, "type");
    if (strcmp(type, "get") != 0) {
        reply_error(ctx, TERN_ET_CANCEL, TERN_SC_FEATURE_NOT_IMPLEMENTED);
        return TERN_HANDLED;
    }
    const char *node = tern_xml_attr(ctx->payload, "node");
    if (node && strcmp(ctx->payload->ns, TERN_NS_PING) != 0) {
        reply_error(ctx, TERN_ET_CANCEL, TERN_SC_ITEM_NOT_FOUND); /* no nodes yet */
        return TERN_HANDLED;
    }
    if (ctx->target == TERN_IQ_TO_SERVER) {
        answer(ctx, 0);
        return TERN_HANDLED;
    }
    if (tern_jid_equal(ctx->to, ctx->from, 1)) {
        answer(ctx, 1); /* the requester's own account exists */
        return TERN_HANDLED;
    }
    struct exists_req *r = tern_calloc(1, sizeof *r);
    r->shard = ctx->shard;
    r->iq = tern_xml_ref(ctx->iq);
    tern_jid_copy(&r->from, ctx->from);
    tern_jid_copy(&r->to, ctx->to);
    r->job.run = exists_run;
    r->job.done = exists_done;
    if (tern_store_submit(ctx->shard->server->store, &r->job) != 0)
        exists_done(&r->job, TERN_E_IO);
    return TERN_HANDLED;
}

static enum tern_hook_result on_version(struct tern_iq_ctx *ctx) {
    if (strcmp(tern_xml_attr(ctx->iq, "type"), "get") != 0) {
        reply_error(ctx, TERN_ET_CANCEL, TERN_SC_FEATURE_NOT_IMPLEMENTED);
        return TERN_HANDLED;
    }
    struct tern_xml *r = tern_stanza_result(ctx->iq);
    struct tern_xml *q = tern_xml_add_el(r, NS_VERSION, "query");
    tern_xml_add_text(tern_xml_add_el(q, NULL, "name"), "Tern", 4);
    tern_xml_add_text(tern_xml_add_el(q, NULL, "version"), TERN_VERSION, strlen(TERN_VERSION));
    tern_module_reply(ctx, r);
    return TERN_HANDLED;
}

static const struct tern_iq_def disco_iqs[] = {
    {NS_DISCO_INFO, TERN_IQ_TO_SERVER | TERN_IQ_TO_ACCOUNT, on_query},
    {NS_DISCO_ITEMS, TERN_IQ_TO_SERVER | TERN_IQ_TO_ACCOUNT, on_query},
    {TERN_NS_PING, TERN_IQ_TO_SERVER | TERN_IQ_TO_ACCOUNT, on_query},
    {NS_VERSION, TERN_IQ_TO_SERVER, on_version},
    {NULL, 0, NULL},
};

static const char *const server_features[] = {TERN_NS_PING, NS_VERSION, NULL};
static const char *const account_features[] = {TERN_NS_PING, NULL};

const struct tern_module tern_mod_disco = {
    .name = "disco",
    .iqs = disco_iqs,
    .server_features = server_features,
    .account_features = account_features,
};
