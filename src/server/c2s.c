/*
 * Client-to-server streams. One struct per TCP connection; the filter chain
 * is socket -> TLS (tls.c) -> XML parser (xml/parser.c) -> this file's
 * stanza handler, and back through the serializer -> TLS -> socket.
 *
 * Lifetime: the struct is freed only when its two handles are closed and no
 * asynchronous operation (store lookup, password check) is pending; those
 * hold a reference (refs). tern_c2s_close() never frees, so any callback may
 * call it.
 */
#include "server/c2s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/c2s_internal.h"
#include "server/iplimits.h"
#include "server/module.h"
#include "server/outq.h"
#include "server/router.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "server/stanza.h"
#include "server/tls.h"
#include "xml/parser.h"
#include "xml/xml.h"

#define COMP "c2s"

/* Bytes waiting to be written before a client counts as not reading. */
#define MAX_QUEUED (8u << 20)
/* How long a closing connection may take to drain its output. */
#define CLOSE_GRACE_MS 5000
/* How soon after a read a parser still holding expat is trimmed. */
#define TRIM_MS 5000

static void on_stream_open(void *ud, const struct tern_xml *header, const char *content_ns);
static void on_stanza(void *ud, struct tern_xml *el);
static void on_stream_close(void *ud);

static const struct tern_xml_parser_cb parser_cb = {
    .stream_open = on_stream_open,
    .stanza = on_stanza,
    .stream_close = on_stream_close,
};

static const struct tern_config *cfg_of(const struct tern_c2s *c) {
    return c->shard->server->cfg;
}

static void limits_for(const struct tern_c2s *c, struct tern_xml_limits *l) {
    const struct tern_config *cfg = cfg_of(c);
    l->max_stanza_size = c->authenticated ? cfg->max_stanza_size : cfg->max_preauth_stanza_size;
    l->max_header_size = cfg->max_preauth_stanza_size;
    l->max_depth = cfg->max_depth;
}

/* ---- lifetime ------------------------------------------------------------ */

void tern__c2s_ref(struct tern_c2s *c) {
    c->refs++;
}

static void c2s_free(struct tern_c2s *c) {
    struct tern_shard *s = c->shard;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->ip_counted) {
        tern_iplimits_conn_close(s->server->ips, c->ip);
        atomic_fetch_sub(&s->server->connections, 1);
    }
    tern__sasl_reset(c);
    tern__csi_release(c);
    tern__sm_release(c);
    tern_xml_parser_free(&c->parser);
    tern_tls_free(&c->tls);
    tern_buf_free(&c->out.buf);
    tern_jid_free(&c->jid);
    free(c->bare);
    tern_xml_unref(&c->pres.last);
    tern_map_free(&c->pres.directed);
    free(c);
    if (s->nconns == 0 && s->on_idle)
        s->on_idle(s);
}

void tern__c2s_unref(struct tern_c2s *c) {
    if (--c->refs == 0)
        c2s_free(c);
}

static void on_handle_closed(uv_handle_t *h) {
    tern__c2s_unref(h->data);
}

/*
 * End the session for good: modules see it go while it is still in the
 * directory (the presence module broadcasts unavailable), it leaves the
 * directory, and what it left unacknowledged is handed on (smacks.c). Then
 * the handles close; the struct goes when the last reference does.
 */
void tern__c2s_teardown(struct tern_c2s *c) {
    if (c->torn_down)
        return;
    c->torn_down = 1;
    c->closing = 1;
    if (c->bound) {
        struct tern_shard *s = c->shard;
        struct tern_event_args ev = {TERN_EV_SESSION_CLOSING, s, c, &c->jid, NULL};
        tern_modules_fire(&ev);
        tern_sessions_unbind(s->server->sessions, c->bare, c->jid.resource, c->uid);
        tern_shard_unbind(s, c->uid);
        c->bound = 0;
        tern__csi_release(c);
        tern__sm_handoff(c);
    }
    tern__sm_release(c);
    uv_timer_stop(&c->timer);
    if (!c->transport_gone) {
        c->transport_gone = 1;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void teardown(struct tern_c2s *c) {
    tern__c2s_teardown(c);
}

void tern__c2s_drop_transport(struct tern_c2s *c) {
    if (c->transport_gone)
        return;
    c->transport_gone = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    /* A hibernating session needs none of the stream's state. */
    tern_xml_parser_free(&c->parser);
    tern_tls_free(&c->tls);
    tern_buf_free(&c->out.buf);
    tern__sasl_reset(c);
}

/* The connection broke (read or write error, reset, TLS failure): a
 * resumable session hibernates, any other ends. */
static void transport_lost(struct tern_c2s *c) {
    if (c->torn_down)
        return;
    if (c->bound && tern__sm_hibernate(c))
        return;
    teardown(c);
}

static void on_lost_later(uv_timer_t *t) {
    transport_lost(t->data);
}

/* From inside the output path, where state must not change under the caller. */
static void transport_lost_later(struct tern_c2s *c) {
    if (c->torn_down || c->transport_gone)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_lost_later, 0, 0);
}

void tern__c2s_adopt(struct tern_c2s *c, struct tern_c2s *old) {
    struct tern_shard *s = c->shard;
    /* identity */
    tern_jid_free(&c->jid);
    c->jid = old->jid;
    memset(&old->jid, 0, sizeof old->jid);
    free(c->bare);
    c->bare = old->bare;
    old->bare = tern_strdup(c->bare); /* for old's last log lines */
    c->uid = old->uid;
    /* presence state */
    c->pres = old->pres;
    memset(&old->pres, 0, sizeof old->pres);
    tern_map_init(&old->pres.directed);
    /* stream management: counters, queue, id; the timer stays each one's own */
    struct tern_sm *sm = &c->sm, *osm = &old->sm;
    sm->enabled = 1;
    sm->resumable = osm->resumable;
    sm->timeout = osm->timeout;
    memcpy(sm->id, osm->id, sizeof sm->id);
    osm->id[0] = '\0';
    sm->h_in = osm->h_in;
    sm->h_out = osm->h_out;
    sm->acked = osm->acked;
    sm->head = osm->head;
    sm->tail = osm->tail;
    sm->queued = osm->queued;
    osm->head = osm->tail = NULL;
    osm->queued = 0;
    tern__sm_rebind_id(c);
    /* the session lives on here */
    c->bound = 1;
    old->bound = 0;
    tern_shard_bind(s, c->uid, c);
    if (old->transport_gone)
        teardown(old);
    else
        tern_c2s_close(old, TERN_SE_CONFLICT, "the session was resumed on another connection");
}

/* ---- output ---------------------------------------------------------------- */

/* A queued write failed: the connection is gone (hibernate or end). */
static void on_write_error(void *owner) {
    struct tern_c2s *c = owner;
    if (c->closing)
        return;
    tern_info(COMP, "%s: write failed", c->peer);
    transport_lost_later(c);
}

static void flush_now(struct tern_c2s *c) {
    if (c->out.buf.len == 0 || c->transport_gone)
        return;
    size_t pending = c->out.buf.len;
    int rc = tern_outq_flush(&c->out, (uv_stream_t *)&c->tcp);
    if (rc == TERN_E_LIMIT) {
        tern_warn(COMP, "%s: client is not reading (%zu bytes queued), closing", c->peer,
                  c->out.queued + pending);
        transport_lost_later(c);
    } else if (rc) {
        tern_info(COMP, "%s: write failed", c->peer);
        transport_lost_later(c);
    }
}

void tern__c2s_flush(struct tern_c2s *c) {
    if (!c->in_read)
        flush_now(c);
}

void tern__c2s_write(struct tern_c2s *c, const char *data, size_t len) {
    if (c->transport_gone)
        return;
    int rc = c->tls ? tern_tls_write(c->tls, data, len) : tern_buf_add(&c->out.buf, data, len);
    if (rc) {
        tern_warn(COMP, "%s: output buffer full, closing", c->peer);
        tern_buf_free(&c->out.buf);
        transport_lost_later(c);
        return;
    }
    tern__c2s_flush(c);
}

void tern__c2s_write_el(struct tern_c2s *c, const struct tern_xml *el) {
    struct tern_buf b;
    tern_buf_init(&b, cfg_of(c)->max_stanza_size * 2 + 4096);
    if (tern_xml_serialize(el, TERN_NS_CLIENT, &b) == 0)
        tern__c2s_write(c, b.data, b.len);
    else
        tern_warn(COMP, "%s: outgoing <%s/> too large, dropped", c->peer, el->name);
    tern_buf_free(&b);
}

static void write_str(struct tern_c2s *c, const char *s) {
    tern__c2s_write(c, s, strlen(s));
}

/* ---- closing --------------------------------------------------------------- */

static void on_close_deadline(uv_timer_t *t) {
    teardown(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    struct tern_c2s *c = req->data;
    free(req);
    teardown(c);
    tern__c2s_unref(c);
}

static void send_header(struct tern_c2s *c, const char *to_attr);

void tern_c2s_close(struct tern_c2s *c, enum tern_stream_error cond, const char *text) {
    tern__c2s_close_with(c, cond, text, NULL);
}

void tern__c2s_close_with(struct tern_c2s *c, enum tern_stream_error cond, const char *text,
                          const char *extra) {
    if (c->transport_gone) {
        teardown(c); /* hibernating: nothing to say, the session just ends */
        return;
    }
    if (c->closing)
        return;
    c->closing = 1;
    if (c->parser)
        tern_xml_parser_stop(c->parser);
    int can_write = !c->tls || tern_tls_established(c->tls);
    if (can_write) {
        if (cond != TERN_SE_NONE) {
            /* RFC 6120 §4.9.1.1: an error before our header needs the header first. */
            if (!c->header_sent)
                send_header(c, NULL);
            struct tern_buf b;
            tern_buf_init(&b, 4096);
            tern_buf_printf(&b, "<stream:error><%s xmlns='" TERN_NS_STREAM_ERRORS "'/>",
                            tern_stream_error_name(cond));
            if (text) {
                tern_buf_adds(&b, "<text xmlns='" TERN_NS_STREAM_ERRORS "' xml:lang='en'>");
                tern_xml_escape(&b, text, strlen(text));
                tern_buf_adds(&b, "</text>");
            }
            if (extra)
                tern_buf_adds(&b, extra);
            tern_buf_adds(&b, "</stream:error>");
            tern__c2s_write(c, b.data, b.len);
            tern_buf_free(&b);
        }
        if (c->header_sent)
            write_str(c, "</stream:stream>");
        if (c->tls)
            tern_tls_shutdown(c->tls);
    }
    flush_now(c);
    if (c->transport_gone)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* Let the output drain, then close; a peer that never reads gets cut
     * off after the grace period. */
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_close_deadline, CLOSE_GRACE_MS, 0);
    uv_shutdown_t *req = tern_malloc(sizeof *req);
    req->data = c;
    tern__c2s_ref(c);
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        tern__c2s_unref(c);
        teardown(c);
    }
}

/* ---- stream header and features ---------------------------------------------- */

static void send_header(struct tern_c2s *c, const char *to_attr) {
    uint8_t rnd[12];
    tern_random_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(c->stream_id + 2 * i, 3, "%02x", rnd[i]);
    struct tern_buf b;
    tern_buf_init(&b, 8192);
    tern_buf_printf(&b,
                    "<?xml version='1.0'?><stream:stream xmlns='" TERN_NS_CLIENT
                    "' xmlns:stream='" TERN_NS_STREAMS "' id='%s' from='",
                    c->stream_id);
    tern_xml_escape(&b, cfg_of(c)->domain, strlen(cfg_of(c)->domain));
    tern_buf_adds(&b, "'");
    if (to_attr) {
        tern_buf_adds(&b, " to='");
        tern_xml_escape(&b, to_attr, strlen(to_attr));
        tern_buf_adds(&b, "'");
    }
    tern_buf_adds(&b, " version='1.0' xml:lang='en'>");
    c->header_sent = 1;
    tern__c2s_write(c, b.data, b.len);
    tern_buf_free(&b);
}

static void send_features(struct tern_c2s *c) {
    const struct tern_config *cfg = cfg_of(c);
    struct tern_buf b;
    tern_buf_init(&b, 8192);
    tern_buf_adds(&b, "<stream:features>");
    if (!c->authenticated) {
        if (!c->tls)
            tern_buf_printf(&b, "<starttls xmlns='" TERN_NS_TLS "'>%s</starttls>",
                            cfg->starttls_required ? "<required/>" : "");
        if (c->tls || !cfg->starttls_required)
            tern__sasl_features(c, &b);
    } else {
        tern_buf_adds(&b, "<bind xmlns='" TERN_NS_BIND "'/>"
                          "<session xmlns='" TERN_NS_SESSION "'><optional/></session>");
        tern__sm_features(c, &b);
        if (cfg->csi_enabled)
            tern_buf_adds(&b, "<csi xmlns='urn:xmpp:csi:0'/>");
        for (const struct tern_module *const *m = tern_modules; *m; m++)
            for (const char *const *f = (*m)->stream_features; f && *f; f++)
                tern_buf_adds(&b, *f);
    }
    tern_buf_adds(&b, "</stream:features>");
    tern__c2s_write(c, b.data, b.len);
    tern_buf_free(&b);
}

static void on_stream_open(void *ud, const struct tern_xml *header, const char *content_ns) {
    struct tern_c2s *c = ud;
    const char *to = tern_xml_attr(header, "to");
    const char *from = tern_xml_attr(header, "from");
    const char *version = tern_xml_attr(header, "version");
    char *from_ok = NULL;
    if (from) {
        struct tern_jid fj;
        if (tern_jid_parse(&fj, from) == 0) {
            from_ok = tern_jid_full(&fj);
            tern_jid_free(&fj);
        }
    }
    send_header(c, from_ok);
    free(from_ok);

    char *domain = NULL;
    if (!to || tern_jid_prep_domain(to, &domain) != 0 || strcmp(domain, cfg_of(c)->domain) != 0) {
        free(domain);
        tern_info(COMP, "%s: stream to unknown host '%s'", c->peer, to ? to : "");
        tern_c2s_close(c, TERN_SE_HOST_UNKNOWN, "this server does not serve that domain");
        return;
    }
    free(domain);
    /* RFC 6120 §4.7.5: we speak 1.0; a missing version means pre-1.0. */
    if (!version || strncmp(version, "1.", 2) != 0) {
        tern_c2s_close(c, TERN_SE_UNSUPPORTED_VERSION, "XMPP 1.0 is required");
        return;
    }
    send_features(c);
}

static void on_stream_close(void *ud) {
    struct tern_c2s *c = ud;
    tern_debug(COMP, "%s: client closed the stream", c->peer);
    tern_c2s_close(c, TERN_SE_NONE, NULL);
}

/* ---- STARTTLS, bind, session --------------------------------------------------- */

static void handle_starttls(struct tern_c2s *c, struct tern_xml *el) {
    if (c->tls || strcmp(el->name, "starttls") != 0) {
        write_str(c, "<failure xmlns='" TERN_NS_TLS "'/>");
        tern_c2s_close(c, TERN_SE_NONE, NULL);
        return;
    }
    write_str(c, "<proceed xmlns='" TERN_NS_TLS "'/>");
    c->start_tls = 1;
    tern_xml_parser_stop(c->parser);
}

void tern__c2s_authenticated(struct tern_c2s *c) {
    const struct tern_config *cfg = cfg_of(c);
    tern_jid_free(&c->jid);
    c->jid.local = tern_strdup(c->sasl_user);
    c->jid.domain = tern_strdup(cfg->domain);
    free(c->bare);
    c->bare = tern_jid_bare(&c->jid);
    c->authenticated = 1;
    uv_timer_stop(&c->timer);
    /* RFC 6120 §6.4.6: a new stream follows. Inside a feed the parser is
     * reset when the feed returns; after an asynchronous check, now. */
    if (c->in_read) {
        c->reset_parser = 1;
        tern_xml_parser_stop(c->parser);
    } else {
        struct tern_xml_limits l;
        c->header_sent = 0;
        tern_xml_parser_reset(c->parser);
        limits_for(c, &l);
        tern_xml_parser_set_limits(c->parser, &l);
    }
}

static void iq_error(struct tern_c2s *c, const struct tern_xml *iq, enum tern_error_type type,
                     enum tern_stanza_cond cond, const char *text) {
    struct tern_stanza_error e = {type, cond, text};
    struct tern_xml *reply = tern_stanza_error_reply(iq, &e);
    tern__c2s_write_el(c, reply);
    tern_xml_unref(&reply);
}

static void make_resource(char *out, size_t len) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t rnd[16];
    tern_random_bytes(rnd, sizeof rnd);
    size_t n = len - 1 < sizeof rnd ? len - 1 : sizeof rnd;
    memcpy(out, "tern-", 5);
    for (size_t i = 5; i < n; i++)
        out[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    out[n] = '\0';
}

static void handle_bind(struct tern_c2s *c, struct tern_xml *iq, struct tern_xml *bind) {
    struct tern_shard *s = c->shard;
    struct tern_xml *res_el = tern_xml_child(bind, TERN_NS_BIND, "resource");
    char *resource = NULL;
    if (res_el) {
        char *raw = tern_xml_text(res_el);
        int rc = raw[0] ? tern_jid_prep_resource(raw, &resource) : TERN_E_INVAL;
        free(raw);
        if (rc) {
            /* RFC 6120 §7.7.2.1 */
            iq_error(c, iq, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, "invalid resourcepart");
            return;
        }
    } else {
        char gen[17];
        make_resource(gen, sizeof gen);
        resource = tern_strdup(gen);
    }
    c->jid.resource = resource;
    c->uid = tern_server_next_uid();
    struct tern_session_ref ref = {s->id, c->uid}, old;
    if (tern_sessions_bind(s->server->sessions, c->bare, resource, ref, &old)) {
        /* RFC 6120 §7.7.2.2: we let the new session win; the old one ends. */
        tern_info(COMP, "%s: %s/%s bound again, closing the older session", c->peer, c->bare,
                  resource);
        tern_router_kick(s, old, TERN_SE_CONFLICT);
    }
    tern_shard_bind(s, c->uid, c);
    c->bound = 1;
    memset(&c->pres, 0, sizeof c->pres);
    tern_map_init(&c->pres.directed);

    struct tern_xml *reply = tern_stanza_result(iq);
    struct tern_xml *b = tern_xml_add_el(reply, TERN_NS_BIND, "bind");
    struct tern_xml *j = tern_xml_add_el(b, NULL, "jid");
    char *full = tern_jid_full(&c->jid);
    tern_xml_add_text(j, full, strlen(full));
    tern__c2s_write_el(c, reply);
    tern_xml_unref(&reply);
    tern_info(COMP, "%s: bound %s (%s)", c->peer, full, c->tls ? tern_tls_version(c->tls) : "");
    free(full);
    struct tern_event_args ev = {TERN_EV_SESSION_BOUND, s, c, &c->jid, NULL};
    tern_modules_fire(&ev);
}

/* Stanzas after SASL and before bind: only bind and session may come. */
static void handle_prebind(struct tern_c2s *c, struct tern_xml *el) {
    const char *type = tern_xml_attr(el, "type");
    if (strcmp(el->ns, TERN_NS_CLIENT) == 0 && strcmp(el->name, "iq") == 0 && type &&
        strcmp(type, "set") == 0 && tern_xml_attr(el, "id")) {
        struct tern_xml *bind = tern_xml_child(el, TERN_NS_BIND, "bind");
        if (bind) {
            handle_bind(c, el, bind);
            return;
        }
        if (tern_xml_child(el, TERN_NS_SESSION, "session")) {
            struct tern_xml *reply = tern_stanza_result(el);
            tern__c2s_write_el(c, reply);
            tern_xml_unref(&reply);
            return;
        }
    }
    /* RFC 6120 §7.1: nothing else is processed before a resource is bound. */
    tern_c2s_close(c, TERN_SE_NOT_AUTHORIZED, "bind a resource first");
}

/* ---- stanzas ----------------------------------------------------------------------- */

static void handle_bound(struct tern_c2s *c, struct tern_xml *el) {
    if (strcmp(el->ns, TERN_NS_CLIENT) != 0 ||
        (strcmp(el->name, "message") && strcmp(el->name, "presence") && strcmp(el->name, "iq"))) {
        tern_c2s_close(c, TERN_SE_UNSUPPORTED_STANZA_TYPE, NULL);
        return;
    }
    /* RFC 6120 §8.1.2.1: the server stamps from; a client may only claim its own JID. */
    const char *from = tern_xml_attr(el, "from");
    if (from) {
        struct tern_jid fj;
        int ok = tern_jid_parse(&fj, from) == 0 && tern_jid_equal(&fj, &c->jid, !fj.resource);
        tern_jid_free(&fj);
        if (!ok) {
            tern_info(COMP, "%s: %s sent a stanza from '%s'", c->peer, c->bare, from);
            tern_c2s_close(c, TERN_SE_INVALID_FROM, NULL);
            return;
        }
    }
    char *full = tern_jid_full(&c->jid);
    tern_xml_set_attr(el, "from", full);
    free(full);
    tern__sm_count_in(c); /* XEP-0198: handled, whatever the outcome */

    if (strcmp(el->name, "iq") == 0) {
        struct tern_xml *session = tern_xml_child(el, TERN_NS_SESSION, "session");
        const char *to = tern_xml_attr(el, "to");
        const char *type = tern_xml_attr(el, "type");
        if (session && !to && type && strcmp(type, "set") == 0) {
            struct tern_xml *reply = tern_stanza_result(el);
            tern__c2s_write_el(c, reply);
            tern_xml_unref(&reply);
            return;
        }
    }
    tern_router_route(c, tern_xml_ref(el));
}

static void on_stanza(void *ud, struct tern_xml *el) {
    struct tern_c2s *c = ud;
    if (c->closing) {
        tern_xml_unref(&el);
        return;
    }
    if (c->authenticated && strcmp(el->ns, "urn:xmpp:sm:3") == 0) {
        tern__sm_handle(c, el);
    } else if (c->bound && strcmp(el->ns, "urn:xmpp:csi:0") == 0) {
        tern__csi_handle(c, el);
    } else if (c->bound) {
        handle_bound(c, el);
    } else if (c->authenticated) {
        handle_prebind(c, el);
    } else if (strcmp(el->ns, TERN_NS_TLS) == 0) {
        handle_starttls(c, el);
    } else if (strcmp(el->ns, TERN_NS_SASL) == 0) {
        tern__sasl_handle(c, el);
    } else {
        tern_c2s_close(c, TERN_SE_NOT_AUTHORIZED, "authenticate first");
    }
    tern_xml_unref(&el);
}

/* ---- input --------------------------------------------------------------------------- */

static void start_tls(struct tern_c2s *c) {
    c->tls = tern_tls_new(c->shard->server->tls, &c->out.buf);
}

static int on_plain(void *ud, const char *data, size_t len) {
    struct tern_c2s *c = ud;
    while (len && !c->closing) {
        enum tern_stream_error cond = TERN_SE_NONE;
        int rc = tern_xml_parser_feed(c->parser, data, len, &cond);
        if (rc < 0) {
            tern_info(COMP, "%s: stream error <%s/>%s%s", c->peer, tern_stream_error_name(cond),
                      c->bare ? " from " : "", c->bare ? c->bare : "");
            tern_c2s_close(c, cond, NULL);
            return TERN_E_CLOSED;
        }
        if (c->start_tls) {
            /* The client must wait for <proceed/>; anything after it in
             * this read was sent too early and is dropped. */
            c->start_tls = 0;
            tern__c2s_flush(c);
            flush_now(c);
            start_tls(c);
            tern_xml_parser_reset(c->parser);
            c->header_sent = 0;
            return 0;
        }
        if (c->reset_parser) {
            struct tern_xml_limits l;
            c->reset_parser = 0;
            c->header_sent = 0;
            tern_xml_parser_reset(c->parser);
            limits_for(c, &l);
            tern_xml_parser_set_limits(c->parser, &l);
        }
        /* feed consumed everything unless it stopped for a reset; bytes
         * after a SASL success are a new stream only if the client
         * pipelined, which RFC 6120 §6.4.6 forbids. */
        break;
    }
    return c->closing ? TERN_E_CLOSED : 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct tern_c2s *c = h->data;
    buf->base = c->shard->readbuf;
    buf->len = TERN_SHARD_READBUF;
}

/* Between stanzas an authenticated stream gives back its expat parser
 * (~11 KiB; parser.h): at the end of its first few reads with stanzas, later
 * when this timer fires. */
static void on_trim(uv_timer_t *t) {
    struct tern_c2s *c = t->data;
    if (!c->closing && c->parser)
        tern_xml_parser_trim(c->parser);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    struct tern_c2s *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            tern_debug(COMP, "%s: connection closed by peer", c->peer);
        else
            tern_info(COMP, "%s: read error: %s", c->peer, uv_strerror((int)nread));
        if (c->bound)
            tern_info(COMP, "%s: %s disconnected", c->peer, c->bare);
        transport_lost(c);
        return;
    }
    if (c->closing)
        return;
    c->in_read = 1;
    if (c->tls) {
        int rc = tern_tls_input(c->tls, buf->base, (size_t)nread, on_plain, c);
        if (rc == TERN_E_TLS) {
            tern_info(COMP, "%s: TLS error: %s", c->peer, tern_tls_last_error());
            c->in_read = 0;
            flush_now(c);
            transport_lost(c);
            return;
        }
        if (rc == TERN_E_CLOSED && !c->closing)
            tern_c2s_close(c, TERN_SE_NONE, NULL);
    } else {
        on_plain(c, buf->base, (size_t)nread);
    }
    c->in_read = 0;
    flush_now(c);
    /* After authentication the timer is free until the close deadline (or
     * transport_lost_later()) takes it. */
    if (c->authenticated && c->parser && !c->closing && !c->transport_gone &&
        tern_xml_parser_idle(c->parser) != 0 && !uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, on_trim, TRIM_MS, 0);
}

static void on_preauth_timeout(uv_timer_t *t) {
    struct tern_c2s *c = t->data;
    if (c->authenticated || c->closing)
        return;
    tern_info(COMP, "%s: not authenticated within %d s, closing", c->peer,
              cfg_of(c)->preauth_timeout);
    tern_c2s_close(c, TERN_SE_CONNECTION_TIMEOUT, "authentication took too long");
}

/* ---- accept ------------------------------------------------------------------------ */

static void peer_names(struct tern_c2s *c) {
    struct sockaddr_storage sa;
    int len = sizeof sa;
    snprintf(c->ip, sizeof c->ip, "?");
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) != 0)
        return;
    int port = 0;
    if (sa.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&sa, c->ip, sizeof c->ip);
        port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        snprintf(c->peer, sizeof c->peer, "%s:%d", c->ip, port);
    } else if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, c->ip, sizeof c->ip);
        port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", c->ip, port);
    }
}

void tern_c2s_accept(struct tern_shard *s, uv_stream_t *listener, int direct_tls) {
    struct tern_server *srv = s->server;
    struct tern_c2s *c = tern_calloc(1, sizeof *c);
    c->shard = s;
    c->direct_tls = direct_tls;
    tern_outq_init(&c->out, srv->cfg->max_stanza_size * 2 + 65536, MAX_QUEUED, on_write_error, c);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->refs = 2; /* the two handles */
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;

    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        teardown(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    peer_names(c);
    if (srv->shutting_down) {
        teardown(c);
        return;
    }
    if (atomic_load(&srv->connections) >= srv->cfg->max_connections) {
        tern_warn(COMP, "%s: %d connections open (limits.max_connections), refused", c->peer,
                  srv->cfg->max_connections);
        if (direct_tls)
            teardown(c);
        else
            tern_c2s_close(c, TERN_SE_RESOURCE_CONSTRAINT, "the server is full");
        return;
    }
    if (tern_iplimits_conn_open(srv->ips, c->ip) != 0) {
        tern_warn(COMP, "%s: too many connections from %s, refused", c->peer, c->ip);
        if (direct_tls) {
            teardown(c);
        } else {
            tern_c2s_close(c, TERN_SE_POLICY_VIOLATION, "too many connections from your address");
        }
        return;
    }
    c->ip_counted = 1;
    atomic_fetch_add(&srv->connections, 1);

    struct tern_xml_limits l;
    limits_for(c, &l);
    c->parser = tern_xml_parser_new(&parser_cb, c, TERN_NS_CLIENT, &l);
    if (direct_tls)
        start_tls(c);
    uv_timer_start(&c->timer, on_preauth_timeout, (uint64_t)srv->cfg->preauth_timeout * 1000, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    tern_debug(COMP, "%s: connected%s", c->peer, direct_tls ? " (direct TLS)" : "");
}

void tern_c2s_send_take(struct tern_c2s *c, struct tern_xml *stanza) {
    if (c->torn_down) {
        tern_xml_unref(&stanza);
        return;
    }
    /* CSI may hold it; SM queues it until acknowledged (or for a hibernated
     * or closing session, only queues it, for resumption or hand-off). */
    tern__csi_send_take(c, stanza);
}

void tern__c2s_write_stanza(struct tern_c2s *c, struct tern_xml *stanza) {
    tern__c2s_write_el(c, stanza);
    if (strcmp(stanza->name, "message") == 0) {
        struct tern_event_args ev = {TERN_EV_DELIVERED, c->shard, c, &c->jid, stanza};
        tern_modules_fire(&ev);
    }
}

const struct tern_jid *tern_c2s_jid(const struct tern_c2s *c) {
    return c->bound ? &c->jid : NULL;
}

const char *tern_c2s_bare(const struct tern_c2s *c) {
    return c->bound ? c->bare : NULL;
}

int tern_c2s_closing(const struct tern_c2s *c) {
    return c->closing;
}

uint64_t tern_c2s_uid(const struct tern_c2s *c) {
    return c->bound ? c->uid : 0;
}

struct tern_shard *tern_c2s_shard(const struct tern_c2s *c) {
    return c->shard;
}

struct tern_c2s_presence *tern_c2s_presence(struct tern_c2s *c) {
    return &c->pres;
}

/* ---- stream management facts, for modules ---------------------------------------- */

void tern_c2s_sm_info(const struct tern_c2s *c, struct tern_c2s_sm_info *out) {
    const struct tern_sm *sm = &c->sm;
    memset(out, 0, sizeof *out);
    if (!sm->enabled)
        return;
    out->enabled = 1;
    out->resumable = sm->resumable;
    out->hibernating = sm->hibernating;
    out->timeout = sm->timeout;
    out->h_out = sm->h_out;
    out->acked = sm->acked;
    out->queued = sm->queued;
    out->r_sent_at = sm->r_sent_at;
}

void tern_c2s_sm_unacked(const struct tern_c2s *c, tern_c2s_unacked_fn fn, void *ud) {
    uint32_t h = c->sm.acked;
    for (const struct tern_sm_entry *e = c->sm.head; e; e = e->next)
        if (fn(e->stanza, ++h, e->stamp, ud))
            return;
}

int tern_c2s_sm_set_expiry(struct tern_c2s *c, int seconds) {
    struct tern_sm *sm = &c->sm;
    if (!sm->hibernating || !sm->timer_open || c->torn_down || seconds < 1 ||
        !uv_is_active((uv_handle_t *)&sm->timer))
        return TERN_E_INVAL;
    /* The expiry timer and its callback belong to smacks.c. uv_timer_again()
     * restarts a timer with its own callback, using the repeat value as the
     * timeout; the callback ends the session, which closes the timer, so the
     * repeat never comes into play. */
    uv_timer_set_repeat(&sm->timer, (uint64_t)seconds * 1000);
    uv_timer_again(&sm->timer);
    return 0;
}
