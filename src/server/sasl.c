/*
 * SASL for c2s (RFC 6120 §6): SCRAM-SHA-1, SCRAM-SHA-256, their -PLUS
 * variants with tls-exporter / tls-server-end-point channel binding, and
 * PLAIN over TLS. Credentials come from the store off the loop; PLAIN's
 * PBKDF2 runs on libuv's thread pool, so the loop never waits.
 */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/c2s_internal.h"
#include "server/iplimits.h"
#include "server/server.h"
#include "server/shard.h"
#include "server/tls.h"
#include "store/store.h"
#include "xml/xml.h"

#define COMP "sasl"

/* Longest base64 payload we accept in <auth> or <response>. */
#define MAX_SASL_B64 8192

static const struct tern_config *cfg_of(const struct tern_c2s *c) {
    return c->shard->server->cfg;
}

static const char *mech_name(const struct tern_c2s *c) {
    switch (c->mech) {
    case TERN_MECH_PLAIN: return "PLAIN";
    case TERN_MECH_SCRAM_SHA1: return c->mech_plus ? "SCRAM-SHA-1-PLUS" : "SCRAM-SHA-1";
    case TERN_MECH_SCRAM_SHA256: return c->mech_plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256";
    case TERN_MECH_NONE: break;
    }
    return "none";
}

void tern__sasl_reset(struct tern_c2s *c) {
    tern_scram_server_free(&c->scram);
    free(c->sasl_user);
    c->sasl_user = NULL;
    c->mech = TERN_MECH_NONE;
    c->mech_plus = 0;
    c->sasl = TERN_SASL_IDLE;
    c->cb_type = TERN_CB_NONE;
}

void tern__sasl_features(struct tern_c2s *c, struct tern_buf *b) {
    int tls = c->tls != NULL;
    tern_buf_adds(b, "<mechanisms xmlns='" TERN_NS_SASL "'>");
    if (tls)
        tern_buf_adds(b, "<mechanism>SCRAM-SHA-256-PLUS</mechanism>"
                         "<mechanism>SCRAM-SHA-1-PLUS</mechanism>");
    tern_buf_adds(b, "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>");
    if (tls && cfg_of(c)->allow_plain)
        tern_buf_adds(b, "<mechanism>PLAIN</mechanism>");
    tern_buf_adds(b, "</mechanisms>");
    if (tls) {
        /* XEP-0440: which channel bindings the -PLUS mechanisms accept. */
        tern_buf_adds(b, "<sasl-channel-binding xmlns='" TERN_NS_SASL_CB "'>");
        if (tern_tls_is_v13(c->tls))
            tern_buf_adds(b, "<channel-binding type='tls-exporter'/>");
        else
            tern_buf_adds(b, "<channel-binding type='tls-unique'/>");
        tern_buf_adds(b, "<channel-binding type='tls-server-end-point'/></sasl-channel-binding>");
    }
}

static void send_sasl(struct tern_c2s *c, const char *name, const uint8_t *data, size_t len,
                      int always_body) {
    struct tern_buf b;
    tern_buf_init(&b, 2 * MAX_SASL_B64);
    tern_buf_printf(&b, "<%s xmlns='" TERN_NS_SASL "'", name);
    if (data && len) {
        char *enc = tern_base64_encode(data, len);
        tern_buf_printf(&b, ">%s</%s>", enc, name);
        free(enc);
    } else if (always_body) {
        tern_buf_printf(&b, ">=</%s>", name);
    } else {
        tern_buf_adds(&b, "/>");
    }
    tern__c2s_write(c, b.data, b.len);
    tern_buf_free(&b);
}

/* A <failure/>. Only failures that checked a password (a wrong proof, a
 * wrong password, an unknown user) count towards the per-IP ban: a client
 * that tries mechanisms or channel bindings we refuse is not guessing. */
static void fail(struct tern_c2s *c, const char *cond, const char *text, int counted) {
    struct tern_buf b;
    tern_buf_init(&b, 1024);
    tern_buf_printf(&b, "<failure xmlns='" TERN_NS_SASL "'><%s/>", cond);
    if (text)
        tern_buf_printf(&b, "<text xml:lang='en'>%s</text>", text);
    tern_buf_adds(&b, "</failure>");
    tern__c2s_write(c, b.data, b.len);
    tern_buf_free(&b);
    if (c->mech != TERN_MECH_NONE || counted)
        tern_info(COMP, "%s: authentication failed for %s%s%s (%s): %s", c->peer,
                  c->sasl_user ? "'" : "", c->sasl_user ? c->sasl_user : "no username yet",
                  c->sasl_user ? "'" : "", mech_name(c), cond);
    if (counted) {
        struct tern_server *srv = c->shard->server;
        if (tern_iplimits_auth_failed(srv->ips, c->ip, uv_now(c->shard->loop)))
            tern_warn(COMP,
                      "%s: %d failed authentications from %s within %d s; refusing it "
                      "for %d s",
                      c->peer, cfg_of(c)->auth_max_failures, c->ip, cfg_of(c)->auth_failure_window,
                      cfg_of(c)->auth_ban_time);
    }
    tern__sasl_reset(c);
}

static void succeed(struct tern_c2s *c, const char *extra, size_t extra_len) {
    tern_info(COMP, "%s: %s@%s authenticated (%s, %s)", c->peer, c->sasl_user, cfg_of(c)->domain,
              mech_name(c), c->tls ? tern_tls_version(c->tls) : "no TLS");
    send_sasl(c, "success", (const uint8_t *)extra, extra_len, 0);
    tern__c2s_authenticated(c);
    tern__sasl_reset(c);
}

/* ---- PLAIN ---------------------------------------------------------------- */

struct plain_check {
    uv_work_t work;                /* thread pool request */
    struct tern_c2s *c;            /* held by a reference */
    struct tern_scram_creds creds; /* the stored keys */
    char *password;                /* wiped and freed after the check */
    int found;                     /* the user exists */
    int result;                    /* 0 or TERN_E_AUTH */
};

static void plain_work(uv_work_t *w) {
    struct plain_check *p = w->data;
    if (p->found)
        p->result = tern_scram_check_password(&p->creds, p->password);
    else
        p->result = TERN_E_AUTH;
}

static void plain_free(struct plain_check *p) {
    if (p->password) {
        tern_memzero(p->password, strlen(p->password));
        free(p->password);
    }
    tern_memzero(&p->creds, sizeof p->creds);
    free(p);
}

static void plain_done(uv_work_t *w, int status) {
    struct plain_check *p = w->data;
    struct tern_c2s *c = p->c;
    if (!c->closing && c->sasl == TERN_SASL_CHECKING) {
        if (p->result == 0)
            succeed(c, NULL, 0);
        else
            fail(c, "not-authorized", NULL, 1);
        tern__c2s_flush(c);
    }
    plain_free(p);
    tern__c2s_unref(c);
}

static void plain_creds(void *ud, int err, const struct tern_scram_creds *creds) {
    struct plain_check *p = ud;
    struct tern_c2s *c = p->c;
    if (c->closing || c->sasl != TERN_SASL_LOOKUP) {
        plain_free(p);
        tern__c2s_unref(c);
        return;
    }
    if (err && err != TERN_E_NOTFOUND) {
        fail(c, "temporary-auth-failure", NULL, 0);
        tern__c2s_flush(c);
        plain_free(p);
        tern__c2s_unref(c);
        return;
    }
    p->found = err == 0;
    if (p->found)
        p->creds = *creds;
    c->sasl = TERN_SASL_CHECKING;
    p->work.data = p;
    /* The reference taken for the lookup carries on to the check. */
    uv_queue_work(c->shard->loop, &p->work, plain_work, plain_done);
}

static void start_plain(struct tern_c2s *c, const uint8_t *msg, size_t len) {
    /* RFC 4616: [authzid] NUL authcid NUL passwd */
    const uint8_t *nul1 = memchr(msg, 0, len);
    const uint8_t *nul2 = nul1 ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - msg)) : NULL;
    if (!nul1 || !nul2 || memchr(nul2 + 1, 0, len - (size_t)(nul2 + 1 - msg))) {
        fail(c, "malformed-request", NULL, 0);
        return;
    }
    char *authzid = tern_strndup((const char *)msg, (size_t)(nul1 - msg));
    char *authcid = tern_strndup((const char *)nul1 + 1, (size_t)(nul2 - nul1 - 1));
    char *password = tern_strndup((const char *)nul2 + 1, len - (size_t)(nul2 + 1 - msg));
    char *user = NULL;
    if (tern_jid_prep_local(authcid, &user) != 0) {
        c->sasl_user = authcid;
        authcid = NULL;
        fail(c, "not-authorized", NULL, 1);
        goto out;
    }
    c->sasl_user = user;
    if (authzid[0]) {
        struct tern_jid z;
        int ok = tern_jid_parse(&z, authzid) == 0 && z.local && !z.resource &&
                 strcmp(z.local, user) == 0 && strcmp(z.domain, cfg_of(c)->domain) == 0;
        tern_jid_free(&z);
        if (!ok) {
            fail(c, "invalid-authzid", NULL, 1);
            goto out;
        }
    }
    struct plain_check *p = tern_calloc(1, sizeof *p);
    p->c = c;
    p->password = password;
    password = NULL;
    c->sasl = TERN_SASL_LOOKUP;
    tern__c2s_ref(c);
    if (tern_store_account_get(c->shard->server->store, user, plain_creds, p) != 0) {
        tern__c2s_unref(c);
        plain_free(p);
        fail(c, "temporary-auth-failure", NULL, 0);
    }
out:
    free(authzid);
    free(authcid);
    if (password) {
        tern_memzero(password, strlen(password));
        free(password);
    }
}

/* ---- SCRAM ------------------------------------------------------------------ */

static void scram_creds(void *ud, int err, const struct tern_scram_creds *creds) {
    struct tern_c2s *c = ud;
    if (c->closing || c->sasl != TERN_SASL_LOOKUP) {
        tern__c2s_unref(c);
        return;
    }
    if (err && err != TERN_E_NOTFOUND) {
        fail(c, "temporary-auth-failure", NULL, 0);
    } else {
        const char *out;
        size_t outlen;
        /* An unknown user gets a plausible challenge and fails at the end. */
        if (tern_scram_server_first(c->scram, err ? NULL : creds, &out, &outlen) != 0) {
            fail(c, "temporary-auth-failure", NULL, 0);
        } else {
            c->sasl = TERN_SASL_CHALLENGED;
            send_sasl(c, "challenge", (const uint8_t *)out, outlen, 0);
        }
    }
    tern__c2s_flush(c);
    tern__c2s_unref(c);
}

static void start_scram(struct tern_c2s *c, const uint8_t *msg, size_t len) {
    enum tern_scram_hash h = c->mech == TERN_MECH_SCRAM_SHA1 ? TERN_SCRAM_SHA1 : TERN_SCRAM_SHA256;
    c->scram = tern_scram_server_new(h, c->mech_plus, c->tls != NULL);
    const char *username = NULL;
    int rc =
        tern_scram_server_client_first(c->scram, (const char *)msg, len, &username, &c->cb_type);
    if (rc == TERN_E_INVAL) {
        fail(c, "malformed-request", NULL, 0);
        return;
    }
    if (rc) {
        /* RFC 5802 §6: "y" while we offer -PLUS, or a flag that does not fit the mechanism. */
        fail(c, "not-authorized", "channel binding mismatch", 0);
        return;
    }
    if (c->cb_type != TERN_CB_NONE) {
        uint8_t cb[64];
        size_t cblen = sizeof cb;
        if (tern_tls_channel_binding(c->tls, c->cb_type, cb, &cblen) != 0) {
            /* Not an attack, a client that guessed a type we do not offer
             * here (XEP-0440 lists ours): not counted towards a ban. */
            fail(c, "not-authorized", "channel binding type not supported on this connection", 0);
            return;
        }
    }
    char *user = NULL;
    if (tern_jid_prep_local(username, &user) != 0)
        user = tern_strdup(username); /* cannot exist; fails like a wrong password */
    c->sasl_user = user;
    const char *authzid = tern_scram_server_authzid(c->scram);
    if (authzid) {
        struct tern_jid z;
        int ok = tern_jid_parse(&z, authzid) == 0 && z.local && !z.resource &&
                 strcmp(z.local, user) == 0 && strcmp(z.domain, cfg_of(c)->domain) == 0;
        tern_jid_free(&z);
        if (!ok && strcmp(authzid, username) != 0) {
            fail(c, "invalid-authzid", NULL, 1);
            return;
        }
    }
    c->sasl = TERN_SASL_LOOKUP;
    tern__c2s_ref(c);
    if (tern_store_account_get(c->shard->server->store, user, scram_creds, c) != 0) {
        tern__c2s_unref(c);
        fail(c, "temporary-auth-failure", NULL, 0);
    }
}

static void scram_response(struct tern_c2s *c, const uint8_t *msg, size_t len) {
    uint8_t cb[64];
    size_t cblen = 0;
    if (c->cb_type != TERN_CB_NONE) {
        cblen = sizeof cb;
        if (!c->tls || tern_tls_channel_binding(c->tls, c->cb_type, cb, &cblen) != 0) {
            fail(c, "not-authorized", "channel binding type not available", 0);
            return;
        }
    }
    const char *out;
    size_t outlen;
    int rc = tern_scram_server_final(c->scram, (const char *)msg, len, cblen ? cb : NULL, cblen,
                                     &out, &outlen);
    if (rc == TERN_E_INVAL) {
        fail(c, "malformed-request", NULL, 1);
        return;
    }
    if (rc) {
        fail(c, "not-authorized", NULL, 1);
        return;
    }
    succeed(c, out, outlen);
}

/* ---- dispatch --------------------------------------------------------------- */

static int parse_mech(struct tern_c2s *c, const char *name) {
    static const struct {
        const char *name;
        enum tern_sasl_mech mech;
        int plus;
    } mechs[] = {
        {"SCRAM-SHA-256-PLUS", TERN_MECH_SCRAM_SHA256, 1},
        {"SCRAM-SHA-1-PLUS", TERN_MECH_SCRAM_SHA1, 1},
        {"SCRAM-SHA-256", TERN_MECH_SCRAM_SHA256, 0},
        {"SCRAM-SHA-1", TERN_MECH_SCRAM_SHA1, 0},
        {"PLAIN", TERN_MECH_PLAIN, 0},
    };
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
        if (strcmp(name, mechs[i].name) == 0) {
            c->mech = mechs[i].mech;
            c->mech_plus = mechs[i].plus;
            return 0;
        }
    }
    return TERN_E_NOTFOUND;
}

/* Decode the payload of <auth> or <response>: "" is none, "=" is empty. */
static int decode_payload(struct tern_xml *el, uint8_t **out, size_t *len, int *none) {
    char *text = tern_xml_text(el);
    int rc = 0;
    *out = NULL;
    *len = 0;
    *none = text[0] == '\0';
    if (strcmp(text, "=") == 0) {
        *out = (uint8_t *)tern_strdup("");
    } else if (!*none) {
        size_t n = strlen(text);
        rc = n > MAX_SASL_B64 ? TERN_E_LIMIT : tern_base64_decode(text, n, out, len);
    }
    free(text);
    return rc;
}

static void run_step(struct tern_c2s *c, const uint8_t *data, size_t len) {
    if (c->mech == TERN_MECH_PLAIN)
        start_plain(c, data, len);
    else
        start_scram(c, data, len);
}

static void handle_auth(struct tern_c2s *c, struct tern_xml *el) {
    const struct tern_config *cfg = cfg_of(c);
    struct tern_server *srv = c->shard->server;
    if (c->sasl != TERN_SASL_IDLE) {
        /* RFC 6120 §6.4.1: a new <auth> while one runs aborts the old one. */
        tern__sasl_reset(c);
    }
    const char *name = tern_xml_attr(el, "mechanism");
    if (!name || parse_mech(c, name) != 0 || (c->mech_plus && !c->tls) ||
        (c->mech == TERN_MECH_PLAIN && !cfg->allow_plain)) {
        tern__sasl_reset(c);
        fail(c, "invalid-mechanism", NULL, 0);
        return;
    }
    if (!c->tls && (cfg->starttls_required || c->mech == TERN_MECH_PLAIN)) {
        /* RFC 6120 §6.4.5: PLAIN, or anything while TLS is required, only over TLS. */
        fail(c, "encryption-required", "use STARTTLS first", 0);
        return;
    }
    if (tern_iplimits_auth_check(srv->ips, c->ip, uv_now(c->shard->loop)) != 0) {
        tern_info(COMP, "%s: authentication attempt from banned address %s refused", c->peer,
                  c->ip);
        fail(c, "temporary-auth-failure", "too many failed authentication attempts; try later", 0);
        return;
    }
    uint8_t *data;
    size_t len;
    int none;
    if (decode_payload(el, &data, &len, &none) != 0) {
        fail(c, "incorrect-encoding", NULL, 0);
        return;
    }
    if (none) {
        /* RFC 6120 §6.4.2: no initial response, so an empty challenge. */
        c->sasl = TERN_SASL_INITIAL;
        send_sasl(c, "challenge", NULL, 0, 0);
        return;
    }
    run_step(c, data, len);
    tern_memzero(data, len);
    free(data);
}

static void handle_response(struct tern_c2s *c, struct tern_xml *el) {
    if (c->sasl != TERN_SASL_INITIAL && c->sasl != TERN_SASL_CHALLENGED) {
        fail(c, "malformed-request", "no exchange in progress", 0);
        return;
    }
    uint8_t *data;
    size_t len;
    int none;
    if (decode_payload(el, &data, &len, &none) != 0) {
        fail(c, "incorrect-encoding", NULL, 0);
        return;
    }
    if (c->sasl == TERN_SASL_INITIAL)
        run_step(c, data ? data : (const uint8_t *)"", len);
    else
        scram_response(c, data ? data : (const uint8_t *)"", len);
    if (data) {
        tern_memzero(data, len);
        free(data);
    }
}

void tern__sasl_handle(struct tern_c2s *c, struct tern_xml *el) {
    if (strcmp(el->name, "auth") == 0) {
        handle_auth(c, el);
    } else if (strcmp(el->name, "response") == 0) {
        handle_response(c, el);
    } else if (strcmp(el->name, "abort") == 0) {
        fail(c, "aborted", NULL, 0);
    } else {
        fail(c, "malformed-request", NULL, 0);
    }
}
