/*
 * The XMPP side of a benchmark connection: stream headers, STARTTLS, SASL,
 * bind, XEP-0198 and XEP-0357 enable, then message delivery to the workload.
 *
 * Incoming XML goes through expat without namespace processing; elements are
 * told apart by local name, which is enough against servers that follow RFC
 * 6120 and keeps the client cheap.
 */
#include "login.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kinds of top-level (depth 1) elements. */
enum {
    E_OTHER,
    E_FEATURES,
    E_PROCEED,
    E_CHALLENGE,
    E_SUCCESS,
    E_FAILURE,
    E_IQ,
    E_MESSAGE,
    E_PRESENCE,
    E_ENABLED,
    E_FAILED,
    E_R,
    E_ERROR,
};

/* Kinds of depth-2 and depth-3 elements we look into. */
enum { C_OTHER, C_MECHANISMS, C_BODY, C_BIND, C_ERROR };

/* Features seen in the current <stream:features/>. */
enum { F_STARTTLS = 1, F_MECH = 2, F_BIND = 4, F_SM = 8 };

#define STREAM_HEADER                                                                              \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"

static const char *local_name(const char *name) {
    const char *colon = strrchr(name, ':');
    return colon ? colon + 1 : name;
}

static const char *attr(const char **atts, const char *name) {
    for (int i = 0; atts[i]; i += 2)
        if (strcmp(atts[i], name) == 0)
            return atts[i + 1];
    return NULL;
}

static void copy_attr(char *dst, size_t size, const char *v) {
    snprintf(dst, size, "%s", v ? v : "");
}

/* Append formatted XML to the output; a full buffer closes the connection. */
static void out_fmt(struct tern_bench_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_fmt(struct tern_bench_conn *c, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp || tern_bench_conn_append(c, tmp, (size_t)n) < 0)
        tern_bench_conn_close(c, 0, "output overflow");
}

/* Escape the characters that may not appear in a quoted attribute value. */
static void attr_escape(const char *in, char *out, size_t size) {
    size_t o = 0;
    for (; *in && o + 7 < size; in++) {
        const char *rep = *in == '&'    ? "&amp;"
                          : *in == '<'  ? "&lt;"
                          : *in == '\'' ? "&apos;"
                          : *in == '"'  ? "&quot;"
                                        : NULL;
        if (rep) {
            size_t n = strlen(rep);
            memcpy(out + o, rep, n);
            o += n;
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

static void fail(struct tern_bench_conn *c, const char *why) {
    tern_bench_conn_close(c, 0, why);
}

/* ---- steps of the login sequence ---------------------------------------- */

static void open_stream(struct tern_bench_conn *c) {
    out_fmt(c, STREAM_HEADER, c->client->domain);
}

static void send_auth(struct tern_bench_conn *c) {
    struct tern_bench_client *cl = c->client;
    char user[128];
    snprintf(user, sizeof user, "%s%u", cl->user_prefix, c->index);
    char msg[TERN_BENCH_SCRAM_MSG_MAX];
    int n;
    const char *mech;
    if (cl->mech == TERN_BENCH_MECH_PLAIN) {
        /* RFC 4616: authzid NUL authcid NUL password. */
        n = snprintf(msg, sizeof msg, "%c%s%c%s", 0, user, 0, cl->password);
        mech = "PLAIN";
    } else {
        enum tern_bench_scram_alg alg = cl->mech == TERN_BENCH_MECH_SCRAM_SHA256
                                            ? TERN_BENCH_SCRAM_SHA256
                                            : TERN_BENCH_SCRAM_SHA1;
        n = tern_bench_scram_start(&c->scram, alg, user, NULL, msg, sizeof msg);
        mech = tern_bench_scram_name(alg);
    }
    if (n < 0 || (size_t)n >= sizeof msg) {
        fail(c, "SASL message too long");
        return;
    }
    char b64[TERN_BENCH_SCRAM_MSG_MAX * 2];
    tern_bench_b64_encode((const uint8_t *)msg, (size_t)n, b64, sizeof b64);
    out_fmt(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>", mech,
            b64);
    c->state = TERN_BENCH_AUTH;
}

static void on_challenge(struct tern_bench_conn *c) {
    uint8_t first[TERN_BENCH_SCRAM_MSG_MAX];
    int n = tern_bench_b64_decode(c->text, c->text_len, first, sizeof first);
    if (n <= 0 || c->client->mech == TERN_BENCH_MECH_PLAIN) {
        fail(c, "bad SASL challenge");
        return;
    }
    struct tern_bench_client *cl = c->client;
    struct tern_bench_scram_cache *cache =
        c->index < cl->ncache ? &cl->cache[c->index] : &cl->shared;
    char final[TERN_BENCH_SCRAM_MSG_MAX];
    int m = tern_bench_scram_final(&c->scram, cl->password, (const char *)first, (size_t)n, cache,
                                   final, sizeof final);
    if (m < 0) {
        fail(c, "bad SCRAM server-first-message");
        return;
    }
    char b64[TERN_BENCH_SCRAM_MSG_MAX * 2];
    tern_bench_b64_encode((const uint8_t *) final, (size_t)m, b64, sizeof b64);
    out_fmt(c, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", b64);
}

static void on_success(struct tern_bench_conn *c) {
    if (c->client->mech != TERN_BENCH_MECH_PLAIN) {
        uint8_t fin[TERN_BENCH_SCRAM_MSG_MAX];
        int n = tern_bench_b64_decode(c->text, c->text_len, fin, sizeof fin);
        if (n <= 0 || tern_bench_scram_verify(&c->scram, (const char *)fin, (size_t)n) < 0) {
            fail(c, "server signature did not verify");
            return;
        }
    }
    /* RFC 6120 §6.4.6: a new stream, without closing the old one. */
    c->restart = 1;
    XML_StopParser(c->xp, XML_FALSE);
    open_stream(c);
    c->state = TERN_BENCH_FEATURES3;
}

/* After bind: the optional steps in order, then ready. */
static void next_after_bind(struct tern_bench_conn *c, enum tern_bench_state done) {
    struct tern_bench_client *cl = c->client;
    if (done < TERN_BENCH_SM && cl->sm) {
        if (!(c->feat & F_SM)) {
            fail(c, "server offers no stream management");
            return;
        }
        out_fmt(c, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        c->state = TERN_BENCH_SM;
        return;
    }
    if (done < TERN_BENCH_PUSH && cl->push_jid) {
        char jid[256];
        attr_escape(cl->push_jid, jid, sizeof jid);
        out_fmt(c,
                "<iq type='set' id='push'><enable xmlns='urn:xmpp:push:0' jid='%s' "
                "node='node%u'/></iq>",
                jid, c->index);
        c->state = TERN_BENCH_PUSH;
        return;
    }
    if (cl->presence)
        out_fmt(c, "<presence/>");
    if (c->state == TERN_BENCH_CLOSING)
        return;
    c->state = TERN_BENCH_READY;
    c->t_ready = tern_bench_now_ns();
    cl->on_ready(c);
}

static void on_features(struct tern_bench_conn *c) {
    switch (c->state) {
    case TERN_BENCH_FEATURES1:
        if (!(c->feat & F_STARTTLS)) {
            fail(c, "server offers no STARTTLS");
            return;
        }
        out_fmt(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        c->state = TERN_BENCH_PROCEED;
        break;
    case TERN_BENCH_FEATURES2:
        if (!(c->feat & F_MECH)) {
            fail(c, "server does not offer the SASL mechanism");
            return;
        }
        send_auth(c);
        break;
    case TERN_BENCH_FEATURES3:
        if (!(c->feat & F_BIND)) {
            fail(c, "server offers no resource binding");
            return;
        }
        out_fmt(c, "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                   "<resource>b</resource></bind></iq>");
        c->state = TERN_BENCH_BIND;
        break;
    default: break;
    }
}

static void on_iq(struct tern_bench_conn *c) {
    int is_result = strcmp(c->iq_type, "result") == 0;
    if (strcmp(c->iq_type, "get") == 0 || strcmp(c->iq_type, "set") == 0) {
        /* Server pings (XEP-0199) and anything else: answer so no one waits. */
        char id[sizeof c->iq_id * 6], to[sizeof c->iq_from * 6];
        attr_escape(c->iq_id, id, sizeof id);
        attr_escape(c->iq_from, to, sizeof to);
        if (to[0])
            out_fmt(c, "<iq type='result' id='%s' to='%s'/>", id, to);
        else
            out_fmt(c, "<iq type='result' id='%s'/>", id);
        return;
    }
    if (c->state == TERN_BENCH_BIND && strcmp(c->iq_id, "bind") == 0) {
        if (!is_result) {
            fail(c, "bind refused");
            return;
        }
        next_after_bind(c, TERN_BENCH_BIND);
    } else if (c->state == TERN_BENCH_PUSH && strcmp(c->iq_id, "push") == 0) {
        if (!is_result) {
            fail(c, "push enable refused");
            return;
        }
        next_after_bind(c, TERN_BENCH_PUSH);
    }
}

/* A complete top-level element. */
static void on_top(struct tern_bench_conn *c) {
    struct tern_bench_client *cl = c->client;
    switch (c->top) {
    case E_FEATURES: on_features(c); break;
    case E_PROCEED:
        if (c->state != TERN_BENCH_PROCEED) {
            fail(c, "unexpected <proceed/>");
            return;
        }
        /* The server sends nothing more in plaintext; a new parser takes the
         * TLS stream. */
        c->restart = 1;
        XML_StopParser(c->xp, XML_FALSE);
        tern_bench__conn_start_tls(c);
        break;
    case E_CHALLENGE:
        if (c->state == TERN_BENCH_AUTH)
            on_challenge(c);
        break;
    case E_SUCCESS:
        if (c->state == TERN_BENCH_AUTH)
            on_success(c);
        break;
    case E_FAILURE:
        fail(c, c->state == TERN_BENCH_AUTH ? "authentication failed" : "STARTTLS failed");
        break;
    case E_ERROR: fail(c, "stream error"); break;
    case E_ENABLED:
        if (c->state == TERN_BENCH_SM) {
            c->sm_on = 1;
            next_after_bind(c, TERN_BENCH_SM);
        }
        break;
    case E_FAILED:
        if (c->state == TERN_BENCH_SM)
            fail(c, "stream management refused");
        break;
    case E_R:
        if (c->sm_on)
            out_fmt(c, "<a xmlns='urn:xmpp:sm:3' h='%u'/>", c->sm_in);
        break;
    case E_IQ:
        if (c->sm_on)
            c->sm_in++;
        on_iq(c);
        break;
    case E_MESSAGE:
        if (c->sm_on)
            c->sm_in++;
        if (c->state == TERN_BENCH_READY && strcmp(c->iq_type, "error") != 0 && c->capture == 2)
            cl->on_message(c, c->text, c->text_len);
        break;
    case E_PRESENCE:
        if (c->sm_on)
            c->sm_in++;
        break;
    default: break;
    }
}

/* ---- expat callbacks ----------------------------------------------------- */

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
    struct tern_bench_conn *c = ud;
    const char *n = local_name(name);
    int d = c->depth++;
    if (d == 0) {
        if (strcmp(n, "stream") != 0)
            fail(c, "not an XMPP stream");
        return;
    }
    if (d == 1) {
        c->child = C_OTHER;
        c->capture = 0;
        c->text_len = 0;
        c->iq_type[0] = '\0';
        if (strcmp(n, "features") == 0) {
            c->top = E_FEATURES;
            c->feat = 0;
        } else if (strcmp(n, "message") == 0) {
            c->top = E_MESSAGE;
            copy_attr(c->iq_type, sizeof c->iq_type, attr(atts, "type"));
        } else if (strcmp(n, "iq") == 0) {
            c->top = E_IQ;
            copy_attr(c->iq_type, sizeof c->iq_type, attr(atts, "type"));
            copy_attr(c->iq_id, sizeof c->iq_id, attr(atts, "id"));
            copy_attr(c->iq_from, sizeof c->iq_from, attr(atts, "from"));
        } else if (strcmp(n, "presence") == 0) {
            c->top = E_PRESENCE;
        } else if (strcmp(n, "proceed") == 0) {
            c->top = E_PROCEED;
        } else if (strcmp(n, "challenge") == 0 || strcmp(n, "success") == 0) {
            c->top = n[0] == 'c' ? E_CHALLENGE : E_SUCCESS;
            c->capture = 1;
        } else if (strcmp(n, "failure") == 0) {
            c->top = E_FAILURE;
        } else if (strcmp(n, "error") == 0) {
            c->top = E_ERROR;
        } else if (strcmp(n, "enabled") == 0) {
            c->top = E_ENABLED;
        } else if (strcmp(n, "failed") == 0) {
            c->top = E_FAILED;
        } else if (strcmp(n, "r") == 0) {
            c->top = E_R;
        } else {
            c->top = E_OTHER;
        }
        return;
    }
    if (d == 2) {
        c->child = C_OTHER;
        if (c->top == E_FEATURES) {
            if (strcmp(n, "starttls") == 0)
                c->feat |= F_STARTTLS;
            else if (strcmp(n, "mechanisms") == 0)
                c->child = C_MECHANISMS;
            else if (strcmp(n, "bind") == 0)
                c->feat |= F_BIND;
            else if (strcmp(n, "sm") == 0 && attr(atts, "xmlns") &&
                     strcmp(attr(atts, "xmlns"), "urn:xmpp:sm:3") == 0)
                c->feat |= F_SM;
        } else if (c->top == E_MESSAGE && strcmp(n, "body") == 0 && c->capture == 0) {
            c->child = C_BODY;
            c->capture = 1;
            c->text_len = 0;
        } else if (c->top == E_IQ && strcmp(n, "bind") == 0) {
            c->child = C_BIND;
        }
        return;
    }
    if (d == 3 && c->child == C_MECHANISMS && strcmp(n, "mechanism") == 0) {
        c->capture = 1;
        c->text_len = 0;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
    struct tern_bench_conn *c = ud;
    int d = --c->depth;
    (void)name;
    if (d == 0) {
        fail(c, "server closed the stream");
        return;
    }
    if (d == 3 && c->child == C_MECHANISMS && c->capture == 1) {
        const char *want = c->client->mech == TERN_BENCH_MECH_PLAIN          ? "PLAIN"
                           : c->client->mech == TERN_BENCH_MECH_SCRAM_SHA256 ? "SCRAM-SHA-256"
                                                                             : "SCRAM-SHA-1";
        if (c->text_len == strlen(want) && memcmp(c->text, want, c->text_len) == 0)
            c->feat |= F_MECH;
        c->capture = 0;
        return;
    }
    if (d == 2 && c->child == C_BODY && c->capture == 1) {
        c->capture = 2; /* body complete: the message carries one */
        return;
    }
    if (d == 1)
        on_top(c);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
    struct tern_bench_conn *c = ud;
    if (c->capture != 1)
        return;
    size_t room = sizeof c->text - c->text_len;
    if ((size_t)len > room) {
        if (c->state < TERN_BENCH_READY) {
            fail(c, "login element too long");
            return;
        }
        len = (int)room; /* a long body: the timestamp is at its start */
    }
    memcpy(c->text + c->text_len, s, (size_t)len);
    c->text_len += (size_t)len;
}

static void new_parser(struct tern_bench_conn *c) {
    if (c->xp) {
        XML_ParserReset(c->xp, NULL);
    } else {
        c->xp = XML_ParserCreate(NULL);
        if (!c->xp) {
            fputs("tern-loadgen: out of memory\n", stderr);
            abort();
        }
    }
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, on_start, on_end);
    XML_SetCharacterDataHandler(c->xp, on_text);
    c->depth = 0;
    c->restart = 0;
}

/* ---- entry points from conn.c ------------------------------------------- */

void tern_bench__login_connected(struct tern_bench_conn *c) {
    new_parser(c);
    if (c->client->direct_tls) {
        tern_bench__conn_start_tls(c);
        return;
    }
    open_stream(c);
    c->state = TERN_BENCH_FEATURES1;
}

void tern_bench__login_tls_up(struct tern_bench_conn *c) {
    new_parser(c);
    open_stream(c);
    c->state = TERN_BENCH_FEATURES2;
}

void tern_bench__login_feed(struct tern_bench_conn *c, const char *data, size_t len) {
    if (!c->xp || c->state == TERN_BENCH_CLOSING)
        return;
    enum XML_Status st = XML_Parse(c->xp, data, (int)len, XML_FALSE);
    if (c->state == TERN_BENCH_CLOSING)
        return;
    if (c->restart) {
        /* Stopped at <proceed/> or <success/>: nothing may follow them in
         * this stream, so no bytes are lost by starting over. */
        new_parser(c);
        return;
    }
    if (st != XML_STATUS_OK)
        fail(c, "XML error from server");
}
