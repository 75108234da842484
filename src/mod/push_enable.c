/*
 * Enabling and disabling push (XEP-0357 §5, §6), and the per-user content
 * options (urn:xmpp:push:options) with their disco#info form (XEP-0128).
 * Every change is one store job: the registration and the options are
 * stored together or not at all.
 */
#include "mod/push_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "mod/disco.h"
#include "server/c2s.h"
#include "server/module.h"
#include "server/stanza.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP                 "push"
#define NS_DATA              "jabber:x:data"
#define FORM_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"

/* ---- enable and disable (XEP-0357 §5, §6) ------------------------------------------- */

struct reg_req {
    struct tern_store_job job;     /* store linkage */
    struct tern_shard *shard;      /* where done runs */
    struct tern_xml *iq;           /* the request (a reference) */
    struct tern_jid from;          /* requester */
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
    tern_module_reply_to(r->shard, &r->from, reply_take);
}

static void reply_error(struct tern_iq_ctx *ctx, enum tern_error_type type,
                        enum tern_stanza_cond cond, const char *text) {
    struct tern_stanza_error e = {type, cond, text};
    tern_module_reply(ctx, tern_stanza_error_reply(ctx->iq, &e));
}

static void reg_req_free(struct reg_req *r) {
    tern_xml_unref(&r->iq);
    tern_jid_free(&r->from);
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
    rc = tern__push_options_read(b, r->user, &had, &set);
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
        if (r->uid)
            tern__push_session_has_reg(r->uid, r->disable ? -1 : 1);
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
        tern_buf_init(&b, TERN__PUSH_OPTIONS_MAX);
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

enum tern_hook_result tern__push_on_iq(struct tern_iq_ctx *ctx) {
    const struct tern_config *cfg = tern__push_cfg(ctx->shard);
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
        } else if (strlen(node) > TERN__PUSH_NODE_MAX) {
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
    r->user = tern_strdup(ctx->from->local);
    r->uid = ctx->session ? tern_c2s_uid(ctx->session) : 0;
    r->job.run = reg_run;
    r->job.done = reg_done;
    r->job.write = 1;
    if (tern_store_submit(ctx->shard->server->store, &r->job) != 0)
        reg_done(&r->job, TERN_E_CLOSED);
    return TERN_HANDLED;
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
    return tern__push_options_read(b, r->user, &r->opts, &r->has_opts);
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
        struct tern_push_content c =
            tern__push_content(tern__push_cfg(r->shard), r->has_opts ? &r->opts : NULL);
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
    tern_module_reply_to(r->shard, &r->from, res);
    tern_xml_unref(&r->iq);
    tern_jid_free(&r->from);
    free(r->user);
    free(r);
}

enum tern_hook_result tern__push_on_disco_info(struct tern_iq_ctx *ctx) {
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
