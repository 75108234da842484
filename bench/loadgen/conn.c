/*
 * Transport of a benchmark connection: socket, TLS through memory BIOs, output
 * buffering and the close path. The XMPP login sequence is in login.c.
 */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "login.h"

/* A queued write owns a copy of what the kernel did not take at once. */
struct write_req {
    uv_write_t req; /* libuv request; data is the connection */
    size_t len;     /* bytes in bytes[] */
    char bytes[];   /* ciphertext */
};

uint64_t tern_bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    return p;
}

int tern_bench_client_init(struct tern_bench_client *c, uv_loop_t *loop, int tls12,
                           int release_buffers) {
    c->loop = loop;
    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ssl_ctx)
        return -1;
    /* The comparison is TLS 1.3 for every server; the client enforces it. */
    SSL_CTX_set_min_proto_version(c->ssl_ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_NONE, NULL);
    /* Every login is a full handshake: no session reuse, so W4 measures the
     * worst case a server must be able to take (a reconnect storm). */
    SSL_CTX_set_session_cache_mode(c->ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c->ssl_ctx, SSL_OP_NO_TICKET);
    /* Idle connections (W1) must not keep 2 x 16 KiB of record buffers each;
     * busy ones (W2) would pay a malloc, free and cleanse per record for it. */
    if (release_buffers)
        SSL_CTX_set_mode(c->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    return 0;
}

void tern_bench_client_cleanup(struct tern_bench_client *c) {
    SSL_CTX_free(c->ssl_ctx);
    c->ssl_ctx = NULL;
}

/* ---- output -------------------------------------------------------------- */

char *tern_bench_conn_reserve(struct tern_bench_conn *c, size_t n) {
    if (c->state == TERN_BENCH_CLOSING || c->state == TERN_BENCH_IDLE)
        return NULL;
    if (c->out_len + n + c->queued > TERN_BENCH_CONN_OUT_MAX)
        return NULL;
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < c->out_len + n)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p) {
            fputs("tern-loadgen: out of memory\n", stderr);
            abort();
        }
        c->out = p;
        c->out_cap = cap;
    }
    char *at = c->out + c->out_len;
    c->out_len += n;
    return at;
}

int tern_bench_conn_append(struct tern_bench_conn *c, const char *xml, size_t len) {
    char *p = tern_bench_conn_reserve(c, len);
    if (!p)
        return -1;
    memcpy(p, xml, len);
    return 0;
}

static void on_write(uv_write_t *req, int status) {
    struct write_req *w = (struct write_req *)req;
    struct tern_bench_conn *c = req->data;
    c->queued -= w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        tern_bench_conn_close(c, 0, "write failed");
}

/* Hand bytes to the kernel: what it takes now is done, the rest is copied. */
static void send_raw(struct tern_bench_conn *c, const char *p, size_t len) {
    if (len == 0 || c->handles == 0)
        return;
    if (c->queued == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && n != UV_EAGAIN) {
            tern_bench_conn_close(c, 0, "write failed");
            return;
        }
        if (len == 0)
            return;
    }
    struct write_req *w = xmalloc(sizeof *w + len);
    memcpy(w->bytes, p, len);
    w->len = len;
    w->req.data = c;
    c->queued += len;
    uv_buf_t b = uv_buf_init(w->bytes, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        c->queued -= len;
        free(w);
        tern_bench_conn_close(c, 0, "write failed");
    }
}

/* Move what OpenSSL produced to the socket. */
static void flush_tls(struct tern_bench_conn *c) {
    char *p;
    long n = BIO_get_mem_data(c->wbio, &p);
    if (n > 0) {
        send_raw(c, p, (size_t)n);
        /* send_raw may have closed c, which frees nothing yet: the BIO lives
         * until the close callback. */
        (void)BIO_reset(c->wbio);
    }
}

void tern_bench_conn_flush(struct tern_bench_conn *c) {
    if (c->handles == 0)
        return;
    if (c->ssl) {
        if (c->out_len > 0 && SSL_is_init_finished(c->ssl)) {
            int n = SSL_write(c->ssl, c->out, (int)c->out_len);
            if (n <= 0) {
                tern_bench_conn_close(c, 0, "TLS write failed");
                return;
            }
            c->out_len = 0;
        }
        flush_tls(c);
    } else if (c->out_len > 0) {
        send_raw(c, c->out, c->out_len);
        c->out_len = 0;
    }
    /* A burst of messages may have grown out; do not keep it while idle. */
    if (c->out_len == 0 && c->out_cap > 16384) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
}

/* ---- close --------------------------------------------------------------- */

static void on_close(uv_handle_t *h) {
    struct tern_bench_conn *c = h->data;
    c->handles = 0;
    if (c->ssl)
        SSL_free(c->ssl); /* frees both BIOs */
    c->ssl = NULL;
    c->rbio = c->wbio = NULL;
    if (c->xp)
        XML_ParserFree(c->xp);
    c->xp = NULL;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    c->state = TERN_BENCH_IDLE;
    c->client->on_closed(c, c->error);
}

void tern_bench_conn_close(struct tern_bench_conn *c, int graceful, const char *error) {
    if (c->state == TERN_BENCH_CLOSING || c->state == TERN_BENCH_IDLE)
        return;
    if (graceful && c->state > TERN_BENCH_CONNECTING &&
        (c->ssl == NULL || SSL_is_init_finished(c->ssl))) {
        static const char end[] = "</stream:stream>";
        if (tern_bench_conn_append(c, end, sizeof end - 1) == 0)
            tern_bench_conn_flush(c);
        if (c->state == TERN_BENCH_CLOSING) /* the flush failed and closed it */
            return;
    }
    c->error = error;
    c->state = TERN_BENCH_CLOSING;
    if (c->xp)
        XML_StopParser(c->xp, XML_FALSE);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void tern_bench_conn_abort(struct tern_bench_conn *c, const char *error) {
    if (c->state == TERN_BENCH_CLOSING || c->state == TERN_BENCH_IDLE)
        return;
    c->error = error;
    c->state = TERN_BENCH_CLOSING;
    if (c->xp)
        XML_StopParser(c->xp, XML_FALSE);
    if (uv_tcp_close_reset(&c->tcp, on_close) < 0)
        uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* ---- input --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct tern_bench_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->client->rbuf, sizeof c->client->rbuf);
}

/* TLS handshake progress; on completion the login sequence goes on. */
static int drive_handshake(struct tern_bench_conn *c) {
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        flush_tls(c);
        tern_bench__login_tls_up(c);
        return 0;
    }
    int err = SSL_get_error(c->ssl, rc);
    flush_tls(c);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    ERR_clear_error();
    tern_bench_conn_close(c, 0, "TLS handshake failed");
    return -1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    struct tern_bench_conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        tern_bench_conn_close(
            c, 0, c->state == TERN_BENCH_READY ? "server closed" : "closed during login");
        return;
    }
    if (c->state == TERN_BENCH_CLOSING)
        return;
    if (!c->ssl) {
        tern_bench__login_feed(c, buf->base, (size_t)nread);
    } else {
        BIO_write(c->rbio, buf->base, (int)nread);
        if (!SSL_is_init_finished(c->ssl) && drive_handshake(c) < 0)
            return;
        /* Decrypt into the same shared buffer: the ciphertext is in rbio now. */
        while (c->state != TERN_BENCH_CLOSING && c->ssl && SSL_is_init_finished(c->ssl)) {
            int n = SSL_read(c->ssl, c->client->rbuf, (int)sizeof c->client->rbuf);
            if (n <= 0) {
                int err = SSL_get_error(c->ssl, n);
                if (err == SSL_ERROR_WANT_READ)
                    break;
                ERR_clear_error();
                tern_bench_conn_close(
                    c, 0, err == SSL_ERROR_ZERO_RETURN ? "server closed" : "TLS read failed");
                return;
            }
            tern_bench__login_feed(c, c->client->rbuf, (size_t)n);
        }
    }
    /* Replies produced while reading leave in one write. */
    if (c->state != TERN_BENCH_CLOSING)
        tern_bench_conn_flush(c);
}

/* Called by login.c when <proceed/> arrived (or at once for direct TLS). */
int tern_bench__conn_start_tls(struct tern_bench_conn *c) {
    c->ssl = SSL_new(c->client->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    /* An empty memory BIO says "retry" instead of EOF. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_tlsext_host_name(c->ssl, c->client->domain);
    SSL_set_connect_state(c->ssl);
    c->state = TERN_BENCH_HANDSHAKE;
    return drive_handshake(c);
}

static void on_connect(uv_connect_t *req, int status) {
    struct tern_bench_conn *c = req->data;
    if (c->state == TERN_BENCH_CLOSING)
        return;
    if (status < 0) {
        tern_bench_conn_close(c, 0, "connect failed");
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        tern_bench_conn_close(c, 0, "read failed");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    tern_bench__login_connected(c);
    if (c->state != TERN_BENCH_CLOSING)
        tern_bench_conn_flush(c);
}

int tern_bench_conn_start(struct tern_bench_conn *c, struct tern_bench_client *client,
                          uint32_t index) {
    void *data = c->data;
    memset(c, 0, sizeof *c);
    c->data = data;
    c->client = client;
    c->index = index;
    c->t_start = tern_bench_now_ns();
    int rc = uv_tcp_init(client->loop, &c->tcp);
    if (rc < 0)
        return rc;
    c->tcp.data = c;
    c->handles = 1;
    c->connect_req.data = c;
    c->state = TERN_BENCH_CONNECTING;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&client->addr,
                        on_connect);
    if (rc < 0) {
        /* Report through the normal path so the workload has one place to count. */
        tern_bench_conn_close(c, 0, "connect failed");
    }
    return 0;
}
