/* Dispatch to the compiled-in modules (module.h). */
#include "server/module.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "server/router.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

int tern_modules_init(struct tern_server *srv) {
    for (const struct tern_module *const *m = tern_modules; *m; m++) {
        if ((*m)->init && (*m)->init(srv) != 0) {
            tern_error("modules", "module %s failed to start", (*m)->name);
            return -1;
        }
    }
    return 0;
}

void tern_modules_fini(struct tern_server *srv) {
    for (const struct tern_module *const *m = tern_modules; *m; m++)
        if ((*m)->fini)
            (*m)->fini(srv);
}

enum tern_hook_result tern_modules_iq(struct tern_iq_ctx *ctx) {
    const char *ns = ctx->payload->ns;
    for (const struct tern_module *const *m = tern_modules; *m; m++) {
        for (const struct tern_iq_def *d = (*m)->iqs; d && d->ns; d++) {
            if ((d->targets & ctx->target) && strcmp(d->ns, ns) == 0 && d->fn(ctx) == TERN_HANDLED)
                return TERN_HANDLED;
        }
    }
    return TERN_PASS;
}

void tern_modules_fire(const struct tern_event_args *args) {
    for (const struct tern_module *const *m = tern_modules; *m; m++)
        for (const struct tern_event_def *e = (*m)->events; e && e->fn; e++)
            if (e->ev == args->ev)
                e->fn(args);
}

void tern_module_reply_to(struct tern_shard *shard, const struct tern_jid *requester,
                          struct tern_xml *reply) {
    /* Replies go to the sender's full JID wherever it is now. */
    char *to = tern_jid_full(requester);
    tern_xml_set_attr(reply, "to", to);
    free(to);
    tern_router_send(shard, reply);
}

void tern_module_reply(struct tern_iq_ctx *ctx, struct tern_xml *reply) {
    tern_module_reply_to(ctx->shard, ctx->from, reply);
}
