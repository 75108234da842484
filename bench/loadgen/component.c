/* XEP-0114 push sink for the load generator; see component.h. */
#include "component.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct write_req {
    uv_write_t req; /* data is the component */
    size_t len;     /* bytes in bytes[] */
    char bytes[];   /* what the kernel did not take at once */
};

void tern_bench_comp_digest(const char *stream_id, const char *secret, char out[41]) {
    uint8_t md[20];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, stream_id, strlen(stream_id));
    EVP_DigestUpdate(ctx, secret, strlen(secret));
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void on_write(uv_write_t *req, int status) {
    struct write_req *w = (struct write_req *)req;
    struct tern_bench_component *k = req->data;
    k->queued -= w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        tern_bench_comp_close(k, "component write failed");
}

static void send_str(struct tern_bench_component *k, const char *p, size_t len) {
    if (!k->open || k->closing || len == 0)
        return;
    if (k->queued == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && n != UV_EAGAIN) {
            tern_bench_comp_close(k, "component write failed");
            return;
        }
        if (len == 0)
            return;
    }
    struct write_req *w = malloc(sizeof *w + len);
    if (!w) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    memcpy(w->bytes, p, len);
    w->len = len;
    w->req.data = k;
    k->queued += len;
    uv_buf_t b = uv_buf_init(w->bytes, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&k->tcp, &b, 1, on_write) < 0) {
        k->queued -= len;
        free(w);
        tern_bench_comp_close(k, "component write failed");
    }
}

static void send_fmt(struct tern_bench_component *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void send_fmt(struct tern_bench_component *k, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof buf)
        send_str(k, buf, (size_t)n);
}

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

/* Attribute values from the server are echoed back: escape what must be. */
static void esc(const char *in, char *out, size_t size) {
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

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
    struct tern_bench_component *k = ud;
    const char *n = local_name(name);
    int d = k->depth++;
    if (d == 0) {
        const char *id = attr(atts, "id");
        if (!id) {
            tern_bench_comp_close(k, "component stream without id");
            return;
        }
        char digest[41];
        tern_bench_comp_digest(id, k->secret, digest);
        send_fmt(k, "<handshake>%s</handshake>", digest);
        return;
    }
    if (d == 1) {
        k->is_publish = 0;
        k->in_body_field = k->in_value = 0;
        k->body_len = 0;
        k->node[0] = k->iq_id[0] = k->iq_from[0] = k->iq_type[0] = '\0';
        if (strcmp(n, "iq") == 0) {
            const char *v;
            snprintf(k->iq_id, sizeof k->iq_id, "%s", (v = attr(atts, "id")) ? v : "");
            snprintf(k->iq_from, sizeof k->iq_from, "%s", (v = attr(atts, "from")) ? v : "");
            snprintf(k->iq_type, sizeof k->iq_type, "%s", (v = attr(atts, "type")) ? v : "");
        }
        return;
    }
    if (strcmp(n, "publish") == 0) {
        const char *node = attr(atts, "node");
        k->is_publish = 1;
        snprintf(k->node, sizeof k->node, "%s", node ? node : "");
    } else if (strcmp(n, "field") == 0) {
        const char *var = attr(atts, "var");
        /* Inside <publish/>: the notification's fields, not publish-options. */
        k->in_body_field = k->is_publish && var && strcmp(var, "last-message-body") == 0;
    } else if (strcmp(n, "value") == 0 && k->in_body_field) {
        k->in_value = 1;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
    struct tern_bench_component *k = ud;
    const char *n = local_name(name);
    int d = --k->depth;
    if (d == 0) {
        tern_bench_comp_close(k, "server closed the component stream");
        return;
    }
    if (d > 1) {
        if (strcmp(n, "value") == 0)
            k->in_value = 0;
        else if (strcmp(n, "field") == 0)
            k->in_body_field = 0;
        return;
    }
    if (strcmp(n, "handshake") == 0) {
        if (!k->ready) {
            k->ready = 1;
            k->on_ready(k);
        }
        return;
    }
    if (strcmp(n, "error") == 0) {
        tern_bench_comp_close(k, "component stream error (bad secret?)");
        return;
    }
    if (strcmp(n, "iq") != 0)
        return;
    if (strcmp(k->iq_type, "get") == 0 || strcmp(k->iq_type, "set") == 0) {
        /* XEP-0357 §7: the app server acknowledges the publish. */
        char id[sizeof k->iq_id * 6], to[sizeof k->iq_from * 6];
        esc(k->iq_id, id, sizeof id);
        esc(k->iq_from, to, sizeof to);
        send_fmt(k, "<iq type='result' id='%s' to='%s' from='%s'/>", id, to, k->jid);
    }
    if (k->is_publish && strcmp(k->iq_type, "set") == 0) {
        k->pushes++;
        k->on_push(k, k->node, k->body, k->body_len);
    } else {
        k->other_iqs++;
    }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
    struct tern_bench_component *k = ud;
    if (!k->in_value)
        return;
    size_t room = sizeof k->body - k->body_len;
    size_t n = (size_t)len < room ? (size_t)len : room;
    memcpy(k->body + k->body_len, s, n);
    k->body_len += n;
}

static void on_close(uv_handle_t *h) {
    struct tern_bench_component *k = h->data;
    k->open = 0;
    if (k->xp)
        XML_ParserFree(k->xp);
    k->xp = NULL;
    k->on_closed(k, k->error);
}

void tern_bench_comp_close(struct tern_bench_component *k, const char *error) {
    if (!k->open || k->closing)
        return;
    k->closing = 1;
    k->error = error;
    if (k->xp)
        XML_StopParser(k->xp, XML_FALSE);
    uv_close((uv_handle_t *)&k->tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct tern_bench_component *k = h->data;
    (void)suggested;
    *buf = uv_buf_init(k->rbuf, sizeof k->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    struct tern_bench_component *k = s->data;
    if (nread == 0 || k->closing)
        return;
    if (nread < 0) {
        tern_bench_comp_close(k, "server closed the component connection");
        return;
    }
    if (XML_Parse(k->xp, buf->base, (int)nread, XML_FALSE) != XML_STATUS_OK && !k->closing)
        tern_bench_comp_close(k, "XML error on the component stream");
}

static void on_connect(uv_connect_t *req, int status) {
    struct tern_bench_component *k = req->data;
    if (k->closing)
        return;
    if (status < 0 || uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) < 0) {
        tern_bench_comp_close(k, "component connect failed");
        return;
    }
    send_fmt(k,
             "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
             "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>",
             k->jid);
}

int tern_bench_comp_start(struct tern_bench_component *k) {
    k->xp = XML_ParserCreate(NULL);
    if (!k->xp) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    XML_SetUserData(k->xp, k);
    XML_SetElementHandler(k->xp, on_start, on_end);
    XML_SetCharacterDataHandler(k->xp, on_text);
    int rc = uv_tcp_init(k->loop, &k->tcp);
    if (rc < 0) {
        XML_ParserFree(k->xp);
        k->xp = NULL;
        return rc;
    }
    k->tcp.data = k;
    k->open = 1;
    k->connect_req.data = k;
    rc = uv_tcp_connect(&k->connect_req, &k->tcp, (const struct sockaddr *)&k->addr, on_connect);
    if (rc < 0)
        tern_bench_comp_close(k, "component connect failed");
    return 0;
}
