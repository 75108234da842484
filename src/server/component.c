/*
 * External components (XEP-0114). One struct per TCP connection; the chain is
 * socket -> XML parser (content namespace jabber:component:accept) -> this
 * file's stanza handler, and back through the serializer -> socket. There is
 * no TLS: XEP-0114 has none, so components belong on loopback.
 *
 * A stream goes header -> <handshake/> -> stanzas. After the handshake the
 * connection is the component's in a process-wide registry (configured
 * domain -> authenticated connection) that every shard reads under a mutex
 * to deliver stanzas: directly when the component lives on the caller's
 * shard, otherwise through the component's own inbox (list + uv_async).
 *
 * Lifetime, as in c2s.c: a connection is never freed inside one of its own
 * callbacks. close() writes the stream error and </stream:stream>, stops
 * reading and asks for a shutdown; teardown() takes the connection out of
 * the registry and closes its three handles; the struct is freed when refs
 * (one per handle, one per pending shutdown) reaches zero.
 */
#include "server/component.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/iplimits.h"
#include "server/outq.h"
#include "server/iqtrack.h"
#include "server/module.h"
#include "server/router.h"
#include "server/server.h"
#include "server/shard.h"
#include "xml/parser.h"
#include "xml/xml.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"

#define COMP "component"

/* Bytes waiting to be written before a component counts as not reading. A
 * component carries many users' traffic, hence more than a client's 8 MiB. */
#define MAX_QUEUED (32u << 20)
/* How long a closing connection may take to drain its output. */
#define CLOSE_GRACE_MS 5000
/* Hex SHA-1 (XEP-0114 §3). */
#define HANDSHAKE_LEN 40

/** A stanza (or a kick) posted by another shard; guarded by reg.lock until taken. */
struct inbox_item {
    struct inbox_item *next; /* FIFO link */
    struct tern_xml *stanza; /* owned; NULL: close with <conflict/> (replaced) */
};

struct tern_component {
    uv_tcp_t tcp;                               /* the socket; tcp.data points back here */
    uv_timer_t timer;                           /* handshake timeout, then close deadline */
    uv_async_t inbox_async;                     /* wakes the loop for posted stanzas */
    struct tern_shard *shard;                   /* owning shard */
    struct tern_component *prev, *next;         /* reg.all */
    int refs;                                   /* handles open + shutdown pending; freed at 0 */
    struct inbox_item *inbox_head, *inbox_tail; /* posted, not yet taken (reg.lock) */

    char ip[46];    /* peer address, for limits and logs */
    char peer[56];  /* "ip:port" or "[ip]:port", for logs */
    int ip_counted; /* ip holds a slot in iplimits */

    struct tern_outq out; /* bytes to write */
    int in_read;          /* inside the read callback: flush at its end */

    struct tern_xml_parser *parser; /* the stream's parser */
    int header_sent;                /* our stream header went out */
    char stream_id[25];             /* id of our stream, hashed into the handshake */
    int index;                      /* the header's 'to' in cfg->component_domains; -1 before */
    const char *domain;             /* cfg->component_domains[index], or NULL */
    int authenticated;              /* handshake accepted */
    int closing;                    /* close started; nothing more is processed */
    int torn_down;                  /* teardown() ran */
    int transport_gone;             /* the socket is closing */
};

/**
 * What every shard shares. cfg is set once before any shard runs and never
 * changes, so reading it needs no lock; the rest is under lock.
 */
static struct {
    const struct tern_config *cfg;  /* NULL until tern_component_init() */
    uv_mutex_t lock;                /* guards active, all, every inbox */
    struct tern_component **active; /* per configured domain: its authenticated stream */
    struct tern_component *all;     /* every connection of every shard */
} reg;

static void on_stream_open(void *ud, const struct tern_xml *header, const char *content_ns);
static void on_stanza(void *ud, struct tern_xml *el);
static void on_stream_close(void *ud);

static const struct tern_xml_parser_cb parser_cb = {
    .stream_open = on_stream_open,
    .stanza = on_stanza,
    .stream_close = on_stream_close,
};

static const struct tern_config *cfg_of(const struct tern_component *c) {
    return c->shard->server->cfg;
}

static void limits_for(const struct tern_component *c, struct tern_xml_limits *l) {
    const struct tern_config *cfg = cfg_of(c);
    l->max_stanza_size = c->authenticated ? cfg->max_stanza_size : cfg->max_preauth_stanza_size;
    l->max_header_size = cfg->max_preauth_stanza_size;
    l->max_depth = cfg->max_depth;
}

/* Index of domain among the configured components, or -1. */
static int find_domain(const char *domain) {
    if (!reg.cfg || !domain)
        return -1;
    for (size_t i = 0; i < reg.cfg->ncomponents; i++)
        if (strcmp(reg.cfg->component_domains[i], domain) == 0)
            return (int)i;
    return -1;
}

/* ---- registry -------------------------------------------------------------- */

void tern_component_init(const struct tern_config *cfg) {
    uv_mutex_init(&reg.lock);
    reg.active = tern_calloc(cfg->ncomponents ? cfg->ncomponents : 1, sizeof *reg.active);
    reg.all = NULL;
    reg.cfg = cfg;
}

void tern_component_fini(void) {
    if (!reg.cfg)
        return;
    free(reg.active);
    reg.active = NULL;
    uv_mutex_destroy(&reg.lock);
    reg.cfg = NULL;
}

int tern_component_known(const char *domain) {
    return find_domain(domain) >= 0;
}

int tern_component_connected(const char *domain) {
    int i = find_domain(domain);
    if (i < 0)
        return 0;
    uv_mutex_lock(&reg.lock);
    int up = reg.active[i] != NULL;
    uv_mutex_unlock(&reg.lock);
    return up;
}

/* Queue item for c, which another thread may own; reg.lock held. */
static void post_locked(struct tern_component *c, struct tern_xml *stanza) {
    struct inbox_item *it = tern_calloc(1, sizeof *it);
    it->stanza = stanza;
    if (c->inbox_tail)
        c->inbox_tail->next = it;
    else
        c->inbox_head = it;
    c->inbox_tail = it;
    /* Under the lock: c cannot close its async handle before this returns. */
    uv_async_send(&c->inbox_async);
}

/* No longer the component's stream (closing or replaced); any thread holding no lock. */
static void unregister(struct tern_component *c) {
    if (c->index < 0)
        return;
    uv_mutex_lock(&reg.lock);
    if (reg.active[c->index] == c)
        reg.active[c->index] = NULL;
    uv_mutex_unlock(&reg.lock);
}

size_t tern_component_count(const struct tern_shard *shard) {
    size_t n = 0;
    if (!reg.cfg)
        return 0;
    uv_mutex_lock(&reg.lock);
    for (struct tern_component *c = reg.all; c; c = c->next)
        n += c->shard == shard;
    uv_mutex_unlock(&reg.lock);
    return n;
}

/* ---- lifetime ------------------------------------------------------------ */

static void comp_free(struct tern_component *c) {
    struct tern_shard *s = c->shard;
    if (c->ip_counted)
        tern_iplimits_conn_close(s->server->ips, c->ip);
    /* Out of the registry since teardown: nobody posts any more. */
    for (struct inbox_item *it = c->inbox_head, *next; it; it = next) {
        next = it->next;
        tern_xml_unref(&it->stanza);
        free(it);
    }
    tern_xml_parser_free(&c->parser);
    tern_buf_free(&c->out.buf);
    free(c);
    if (tern_component_count(s) == 0 && s->on_idle)
        s->on_idle(s);
}

static void unref(struct tern_component *c) {
    if (--c->refs == 0)
        comp_free(c);
}

static void on_handle_closed(uv_handle_t *h) {
    unref(h->data);
}

static void teardown(struct tern_component *c) {
    if (c->torn_down)
        return;
    c->torn_down = 1;
    c->closing = 1;
    if (c->authenticated)
        tern_info(COMP, "%s: component %s disconnected", c->peer, c->domain);
    uv_mutex_lock(&reg.lock);
    if (c->index >= 0 && reg.active[c->index] == c)
        reg.active[c->index] = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        reg.all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_mutex_unlock(&reg.lock);
    uv_timer_stop(&c->timer);
    if (!c->transport_gone) {
        c->transport_gone = 1;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->inbox_async, on_handle_closed);
}

static void on_lost_later(uv_timer_t *t) {
    teardown(t->data);
}

/* From inside the output path, where state must not change under the caller. */
static void lost_later(struct tern_component *c) {
    if (c->torn_down)
        return;
    c->closing = 1;
    unregister(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_lost_later, 0, 0);
}

/* ---- output ---------------------------------------------------------------- */

/* A queued write failed: the component is gone. */
static void on_write_error(void *owner) {
    struct tern_component *c = owner;
    if (c->closing)
        return;
    tern_info(COMP, "%s: write failed", c->peer);
    lost_later(c);
}

static void flush_now(struct tern_component *c) {
    if (c->out.buf.len == 0 || c->transport_gone)
        return;
    size_t pending = c->out.buf.len;
    int rc = tern_outq_flush(&c->out, (uv_stream_t *)&c->tcp);
    if (rc == TERN_E_LIMIT) {
        tern_warn(COMP, "%s: component %s is not reading (%zu bytes queued), closing", c->peer,
                  c->domain ? c->domain : "?", c->out.queued + pending);
        lost_later(c);
    } else if (rc) {
        tern_info(COMP, "%s: write failed", c->peer);
        lost_later(c);
    }
}

static void write_raw(struct tern_component *c, const char *data, size_t len) {
    if (c->transport_gone)
        return;
    if (tern_buf_add(&c->out.buf, data, len) != 0) {
        tern_warn(COMP, "%s: output buffer full, closing", c->peer);
        tern_buf_free(&c->out.buf);
        lost_later(c);
        return;
    }
    if (!c->in_read)
        flush_now(c);
}

static void write_str(struct tern_component *c, const char *s) {
    write_raw(c, s, strlen(s));
}

/*
 * A stanza of the server (jabber:client inside) onto the component stream.
 * Serialized against jabber:client as the parent namespace, it carries no
 * xmlns, so the component reads it in its stream's jabber:component:accept.
 */
static void write_stanza(struct tern_component *c, const struct tern_xml *stanza) {
    if (c->closing)
        return;
    struct tern_buf b;
    tern_buf_init(&b, cfg_of(c)->max_stanza_size * 2 + 4096);
    if (tern_xml_serialize(stanza, TERN_NS_CLIENT, &b) == 0)
        write_raw(c, b.data, b.len);
    else
        tern_warn(COMP, "%s: outgoing <%s/> too large, dropped", c->peer, stanza->name);
    tern_buf_free(&b);
}

/* ---- closing --------------------------------------------------------------- */

static void on_close_deadline(uv_timer_t *t) {
    teardown(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    struct tern_component *c = req->data;
    free(req);
    teardown(c);
    unref(c);
}

static void send_header(struct tern_component *c);

/* End the stream (after a stream error if cond is set). Never frees. */
static void comp_close(struct tern_component *c, enum tern_stream_error cond, const char *text) {
    if (c->closing || c->transport_gone)
        return;
    c->closing = 1;
    unregister(c); /* from now on stanzas for the domain bounce */
    if (c->parser)
        tern_xml_parser_stop(c->parser);
    if (cond != TERN_SE_NONE) {
        /* RFC 6120 §4.9.1.1: an error before our header needs the header first. */
        if (!c->header_sent)
            send_header(c);
        struct tern_buf b;
        tern_buf_init(&b, 4096);
        tern_buf_printf(&b, "<stream:error><%s xmlns='" TERN_NS_STREAM_ERRORS "'/>",
                        tern_stream_error_name(cond));
        if (text) {
            tern_buf_adds(&b, "<text xmlns='" TERN_NS_STREAM_ERRORS "' xml:lang='en'>");
            tern_xml_escape(&b, text, strlen(text));
            tern_buf_adds(&b, "</text>");
        }
        tern_buf_adds(&b, "</stream:error>");
        write_raw(c, b.data, b.len);
        tern_buf_free(&b);
    }
    if (c->header_sent)
        write_str(c, "</stream:stream>");
    flush_now(c);
    if (c->transport_gone || c->torn_down)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* Let the output drain, then close; a peer that never reads is cut off. */
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_close_deadline, CLOSE_GRACE_MS, 0);
    uv_shutdown_t *req = tern_malloc(sizeof *req);
    req->data = c;
    c->refs++;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        c->refs--;
        teardown(c);
    }
}

void tern_component_close_all(struct tern_shard *shard, enum tern_stream_error cond,
                              const char *text) {
    if (!reg.cfg)
        return;
    /* Collect first: closing takes the lock (unregister). Nothing is freed
     * meanwhile, since only this thread frees this shard's connections. */
    size_t n = 0, cap = 0;
    struct tern_component **list = NULL;
    uv_mutex_lock(&reg.lock);
    for (struct tern_component *c = reg.all; c; c = c->next) {
        if (c->shard != shard)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            list = tern_realloc(list, cap * sizeof *list);
        }
        list[n++] = c;
    }
    uv_mutex_unlock(&reg.lock);
    for (size_t i = 0; i < n; i++)
        comp_close(list[i], cond, text);
    free(list);
}

/* ---- stream header and handshake ---------------------------------------------- */

static void send_header(struct tern_component *c) {
    uint8_t rnd[12];
    tern_random_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(c->stream_id + 2 * i, 3, "%02x", rnd[i]);
    /* XEP-0114 §3: our header names the component's domain as 'from'. */
    const char *from = c->domain ? c->domain : cfg_of(c)->domain;
    struct tern_buf b;
    tern_buf_init(&b, 8192);
    tern_buf_printf(&b,
                    "<?xml version='1.0'?><stream:stream xmlns='" TERN_NS_COMPONENT
                    "' xmlns:stream='" TERN_NS_STREAMS "' id='%s' from='",
                    c->stream_id);
    tern_xml_escape(&b, from, strlen(from));
    tern_buf_adds(&b, "'>");
    c->header_sent = 1;
    write_raw(c, b.data, b.len);
    tern_buf_free(&b);
}

static void on_stream_open(void *ud, const struct tern_xml *header, const char *content_ns) {
    struct tern_component *c = ud;
    const char *to = tern_xml_attr(header, "to");
    char *domain = NULL;
    if (to && tern_jid_prep_domain(to, &domain) == 0)
        c->index = find_domain(domain);
    free(domain);
    if (c->index < 0) {
        send_header(c);
        tern_info(COMP, "%s: stream for unknown component '%s'", c->peer, to ? to : "");
        comp_close(c, TERN_SE_HOST_UNKNOWN, "no component is configured for that domain");
        return;
    }
    c->domain = cfg_of(c)->component_domains[c->index];
    send_header(c);
}

static void on_stream_close(void *ud) {
    struct tern_component *c = ud;
    tern_debug(COMP, "%s: component closed the stream", c->peer);
    comp_close(c, TERN_SE_NONE, NULL);
}

/* hex(SHA-1(stream id + secret)), lower case, into out (HANDSHAKE_LEN + 1). */
static int expected_handshake(const struct tern_component *c, char *out) {
    const char *secret = cfg_of(c)->component_secrets[c->index];
    size_t idlen = strlen(c->stream_id), slen = strlen(secret);
    char *input = tern_malloc(idlen + slen);
    memcpy(input, c->stream_id, idlen);
    memcpy(input + idlen, secret, slen);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(input, idlen + slen, md, &mdlen, EVP_sha1(), NULL) == 1 && mdlen == 20;
    tern_memzero(input, idlen + slen);
    free(input);
    if (!ok)
        return TERN_E_INVAL;
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    tern_memzero(md, sizeof md);
    return 0;
}

/* Is text (the <handshake/> content, surrounding white space allowed) the right digest? */
static int handshake_ok(const struct tern_component *c, const char *text) {
    char want[HANDSHAKE_LEN + 1], got[HANDSHAKE_LEN + 1];
    size_t len = strlen(text);
    while (len && strchr(" \t\r\n", text[len - 1]))
        len--;
    while (len && strchr(" \t\r\n", *text)) {
        text++;
        len--;
    }
    if (len != HANDSHAKE_LEN || expected_handshake(c, want) != 0)
        return 0;
    for (size_t i = 0; i < HANDSHAKE_LEN; i++) {
        char ch = text[i];
        got[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
    }
    got[HANDSHAKE_LEN] = '\0';
    /* Constant time: how much of a guess was right must not show in timing. */
    int ok = CRYPTO_memcmp(want, got, HANDSHAKE_LEN) == 0;
    tern_memzero(want, sizeof want);
    return ok;
}

/* The component's stream now: registered, the older stream (if any) replaced. */
static void become_active(struct tern_component *c) {
    struct tern_component *old;
    uv_mutex_lock(&reg.lock);
    old = reg.active[c->index];
    reg.active[c->index] = c;
    /* Another shard's connection may only be touched by its thread. */
    if (old && old->shard != c->shard)
        post_locked(old, NULL);
    uv_mutex_unlock(&reg.lock);
    if (old && old->shard == c->shard) {
        tern_info(COMP, "%s: component %s connected again, closing the older stream", c->peer,
                  c->domain);
        comp_close(old, TERN_SE_CONFLICT, "the component connected again");
    }
}

static void handle_handshake(struct tern_component *c, struct tern_xml *el) {
    struct tern_server *srv = c->shard->server;
    if (strcmp(el->ns, TERN_NS_COMPONENT) != 0 || strcmp(el->name, "handshake") != 0) {
        comp_close(c, TERN_SE_NOT_AUTHORIZED, "send the handshake first");
        return;
    }
    if (tern_iplimits_auth_check(srv->ips, c->ip, uv_now(c->shard->loop)) != 0) {
        tern_info(COMP, "%s: handshake from banned address %s refused", c->peer, c->ip);
        comp_close(c, TERN_SE_POLICY_VIOLATION, "too many failed handshakes; try later");
        return;
    }
    char *text = tern_xml_text(el);
    int ok = handshake_ok(c, text);
    tern_memzero(text, strlen(text));
    free(text);
    if (!ok) {
        tern_warn(COMP, "%s: wrong handshake for component %s", c->peer, c->domain);
        if (tern_iplimits_auth_failed(srv->ips, c->ip, uv_now(c->shard->loop)))
            tern_warn(COMP, "%s: too many failed authentications from %s; refusing it for %d s",
                      c->peer, c->ip, cfg_of(c)->auth_ban_time);
        comp_close(c, TERN_SE_NOT_AUTHORIZED, NULL);
        return;
    }
    c->authenticated = 1;
    uv_timer_stop(&c->timer);
    struct tern_xml_limits l;
    limits_for(c, &l);
    tern_xml_parser_set_limits(c->parser, &l);
    become_active(c);
    write_str(c, "<handshake/>");
    tern_info(COMP, "%s: component %s connected", c->peer, c->domain);
}

/* ---- stanzas from the component ------------------------------------------------- */

/*
 * Elements in the stream's namespace move to jabber:client, the one stanza
 * namespace of the rest of the server (write_stanza() maps them back).
 * Iterative, like the serializer: depth is bounded by the parser anyway.
 */
static void to_client_ns(struct tern_xml *root) {
    struct tern_xml *el = root;
    for (;;) {
        if (el->kind == TERN_XML_ELEMENT && strcmp(el->ns, TERN_NS_COMPONENT) == 0) {
            free(el->ns);
            el->ns = tern_strdup(TERN_NS_CLIENT);
        }
        if (el->children) {
            el = el->children;
            continue;
        }
        while (el != root && !el->next)
            el = el->parent;
        if (el == root)
            return;
        el = el->next;
    }
}

static void bounce(struct tern_shard *shard, const struct tern_xml *stanza,
                   enum tern_stanza_cond cond) {
    tern_router_bounce(shard, stanza, TERN_ET_CANCEL, cond);
}

/*
 * An IQ from a component to the server's domain or a local account. The
 * same rules as a client's (router.c route_iq), with no session: requests
 * go to the modules, answers to the requests the server sent.
 */
static void iq_to_local(struct tern_shard *shard, const struct tern_jid *from,
                        const struct tern_jid *to, struct tern_xml *iq) {
    const char *type = tern_xml_attr(iq, "type");
    int request = type && (!strcmp(type, "get") || !strcmp(type, "set"));
    int response = type && (!strcmp(type, "result") || !strcmp(type, "error"));
    if (!request && !response) {
        tern_router_bounce(shard, iq, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST);
        return;
    }
    if (to->local && to->resource) {
        tern_router_send(shard, tern_xml_ref(iq)); /* to that session, or bounced */
        return;
    }
    if (response) {
        if (!to->local && !to->resource)
            tern_iq_response(shard, iq); /* dropped unless it answers our request */
        return;
    }
    if (to->resource) {
        bounce(shard, iq, TERN_SC_SERVICE_UNAVAILABLE); /* the domain has no resources */
        return;
    }
    struct tern_xml *payload = tern_xml_first_el(iq);
    if (!payload || !tern_xml_attr(iq, "id") || tern_xml_next(payload, NULL, NULL)) {
        /* RFC 6120 §8.2.3: get/set carries exactly one child and an id */
        tern_router_bounce(shard, iq, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST);
        return;
    }
    struct tern_iq_ctx ctx = {
        .shard = shard,
        .session = NULL, /* not a local client */
        .from = from,
        .to = to,
        .iq = iq,
        .payload = payload,
        .target = to->local ? TERN_IQ_TO_ACCOUNT : TERN_IQ_TO_SERVER,
    };
    if (tern_modules_iq(&ctx) == TERN_PASS)
        bounce(shard, iq, TERN_SC_SERVICE_UNAVAILABLE);
}

/* Where a component's stanza ('from' checked, 'to' parsed) goes. */
static void route(struct tern_component *c, const struct tern_jid *from, const struct tern_jid *to,
                  struct tern_xml *el) {
    struct tern_shard *shard = c->shard;
    if (strcmp(to->domain, cfg_of(c)->domain) == 0) {
        if (strcmp(el->name, "iq") == 0)
            iq_to_local(shard, from, to, el);
        else if (to->local)
            tern_router_send(shard, tern_xml_ref(el)); /* message or inbound presence */
        else if (strcmp(el->name, "message") == 0)
            bounce(shard, el, TERN_SC_SERVICE_UNAVAILABLE); /* nothing here takes messages */
        return;
    }
    if (tern_component_known(to->domain)) {
        tern_router_send(shard, tern_xml_ref(el)); /* another component, or bounced */
        return;
    }
    /* No federation yet: RFC 6120 §8.3.3.13 */
    bounce(shard, el, TERN_SC_REMOTE_SERVER_NOT_FOUND);
}

static void handle_stanza(struct tern_component *c, struct tern_xml *el) {
    if (strcmp(el->ns, TERN_NS_COMPONENT) != 0 ||
        (strcmp(el->name, "message") && strcmp(el->name, "presence") && strcmp(el->name, "iq"))) {
        comp_close(c, TERN_SE_UNSUPPORTED_STANZA_TYPE, NULL);
        return;
    }
    const char *from_s = tern_xml_attr(el, "from");
    const char *to_s = tern_xml_attr(el, "to");
    if (!from_s || !to_s) {
        /* RFC 6120 §4.9.3.7: between servers both addresses are required. */
        tern_info(COMP, "%s: %s sent a stanza without '%s'", c->peer, c->domain,
                  from_s ? "to" : "from");
        comp_close(c, TERN_SE_IMPROPER_ADDRESSING,
                   from_s ? "a stanza needs 'to'" : "a stanza needs 'from'");
        return;
    }
    struct tern_jid from = {0}, to = {0};
    /* XEP-0114: a component speaks for its own domain (any local part or resource) only. */
    if (tern_jid_parse(&from, from_s) != 0 || strcmp(from.domain, c->domain) != 0) {
        tern_info(COMP, "%s: %s sent a stanza from '%s'", c->peer, c->domain, from_s);
        comp_close(c, TERN_SE_INVALID_FROM, NULL);
        goto out;
    }
    to_client_ns(el);
    char *full = tern_jid_full(&from); /* prepared, for matching answers (iqtrack.c) */
    tern_xml_set_attr(el, "from", full);
    free(full);
    if (tern_jid_parse(&to, to_s) != 0) {
        tern_router_bounce(c->shard, el, TERN_ET_MODIFY, TERN_SC_JID_MALFORMED);
        goto out;
    }
    route(c, &from, &to, el);
out:
    tern_jid_free(&from);
    tern_jid_free(&to);
}

/* The component ended the stream with an error: say why in the log, answer nothing. */
static void peer_error(struct tern_component *c, const struct tern_xml *el) {
    const struct tern_xml *cond = tern_xml_child(el, TERN_NS_STREAM_ERRORS, NULL);
    while (cond && strcmp(cond->name, "text") == 0)
        cond = tern_xml_next(cond, TERN_NS_STREAM_ERRORS, NULL);
    tern_info(COMP, "%s: %s sent stream error <%s/>", c->peer, c->domain ? c->domain : "component",
              cond ? cond->name : "?");
    comp_close(c, TERN_SE_NONE, NULL);
}

static void on_stanza(void *ud, struct tern_xml *el) {
    struct tern_component *c = ud;
    if (!c->closing) {
        if (strcmp(el->ns, TERN_NS_STREAMS) == 0 && strcmp(el->name, "error") == 0)
            peer_error(c, el);
        else if (c->authenticated)
            handle_stanza(c, el);
        else
            handle_handshake(c, el);
    }
    tern_xml_unref(&el);
}

/* ---- input ----------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct tern_component *c = h->data;
    buf->base = c->shard->readbuf;
    buf->len = TERN_SHARD_READBUF;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    struct tern_component *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            tern_debug(COMP, "%s: connection closed by peer", c->peer);
        else
            tern_info(COMP, "%s: read error: %s", c->peer, uv_strerror((int)nread));
        teardown(c);
        return;
    }
    if (c->closing)
        return;
    c->in_read = 1;
    enum tern_stream_error cond = TERN_SE_NONE;
    if (tern_xml_parser_feed(c->parser, buf->base, (size_t)nread, &cond) < 0 && !c->closing) {
        tern_info(COMP, "%s: stream error <%s/>%s%s", c->peer, tern_stream_error_name(cond),
                  c->domain ? " from " : "", c->domain ? c->domain : "");
        comp_close(c, cond, NULL);
    }
    c->in_read = 0;
    flush_now(c);
}

static void on_handshake_timeout(uv_timer_t *t) {
    struct tern_component *c = t->data;
    if (c->authenticated || c->closing)
        return;
    tern_info(COMP, "%s: no handshake within %d s, closing", c->peer, cfg_of(c)->preauth_timeout);
    comp_close(c, TERN_SE_CONNECTION_TIMEOUT, "the handshake took too long");
}

/* Stanzas and kicks posted by other shards. */
static void on_inbox(uv_async_t *a) {
    struct tern_component *c = a->data;
    uv_mutex_lock(&reg.lock);
    struct inbox_item *it = c->inbox_head;
    c->inbox_head = c->inbox_tail = NULL;
    uv_mutex_unlock(&reg.lock);
    while (it) {
        struct inbox_item *next = it->next;
        if (it->stanza) {
            write_stanza(c, it->stanza);
            tern_xml_unref(&it->stanza);
        } else {
            tern_info(COMP, "%s: component %s connected again, closing the older stream", c->peer,
                      c->domain);
            comp_close(c, TERN_SE_CONFLICT, "the component connected again");
        }
        free(it);
        it = next;
    }
}

int tern_component_send(struct tern_shard *shard, const char *domain, struct tern_xml *stanza) {
    int i = find_domain(domain);
    if (i < 0) {
        tern_xml_unref(&stanza);
        return TERN_E_NOTFOUND;
    }
    uv_mutex_lock(&reg.lock);
    struct tern_component *c = reg.active[i];
    if (c && c->shard != shard) {
        post_locked(c, stanza);
        uv_mutex_unlock(&reg.lock);
        return 0;
    }
    uv_mutex_unlock(&reg.lock);
    if (!c) {
        tern_xml_unref(&stanza);
        return TERN_E_CLOSED;
    }
    /* Our own shard: only this thread could free c, so it is still there. */
    write_stanza(c, stanza);
    tern_xml_unref(&stanza);
    return 0;
}

/* ---- accept ------------------------------------------------------------------------ */

static void peer_names(struct tern_component *c) {
    struct sockaddr_storage sa;
    int len = sizeof sa;
    snprintf(c->ip, sizeof c->ip, "?");
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) != 0)
        return;
    if (sa.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&sa, c->ip, sizeof c->ip);
        snprintf(c->peer, sizeof c->peer, "%s:%d", c->ip,
                 ntohs(((struct sockaddr_in *)&sa)->sin_port));
    } else if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, c->ip, sizeof c->ip);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", c->ip,
                 ntohs(((struct sockaddr_in6 *)&sa)->sin6_port));
    }
}

static void accept_one(struct tern_shard *s, uv_stream_t *listener) {
    struct tern_server *srv = s->server;
    struct tern_component *c = tern_calloc(1, sizeof *c);
    c->shard = s;
    c->index = -1;
    tern_outq_init(&c->out, srv->cfg->max_stanza_size * 2 + 65536, MAX_QUEUED, on_write_error, c);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    uv_async_init(s->loop, &c->inbox_async, on_inbox);
    c->tcp.data = c;
    c->timer.data = c;
    c->inbox_async.data = c;
    c->refs = 3; /* the three handles */
    uv_mutex_lock(&reg.lock);
    c->next = reg.all;
    if (reg.all)
        reg.all->prev = c;
    reg.all = c;
    uv_mutex_unlock(&reg.lock);

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
    if (tern_iplimits_conn_open(srv->ips, c->ip) != 0) {
        tern_warn(COMP, "%s: too many connections from %s, refused", c->peer, c->ip);
        comp_close(c, TERN_SE_POLICY_VIOLATION, "too many connections from your address");
        return;
    }
    c->ip_counted = 1;
    struct tern_xml_limits l;
    limits_for(c, &l);
    c->parser = tern_xml_parser_new(&parser_cb, c, TERN_NS_COMPONENT, &l);
    uv_timer_start(&c->timer, on_handshake_timeout, (uint64_t)srv->cfg->preauth_timeout * 1000, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    tern_debug(COMP, "%s: connected", c->peer);
}

void tern_component_accept(struct tern_shard *shard, uv_stream_t *listener, int direct_tls) {
    accept_one(shard, listener);
}
