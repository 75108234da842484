/*
 * One benchmark client connection: TCP, TLS (STARTTLS or direct), SASL
 * (SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN), resource binding, and optionally
 * XEP-0198 <enable/>, XEP-0357 <enable/> and initial presence; after that it
 * hands received message bodies to the workload and sends what the workload
 * appends.
 *
 * Everything runs on one libuv loop. A connection never frees itself: its
 * memory belongs to the workload (usually one element of an array); after
 * tern_bench_conn_close() the on_closed callback fires from the libuv close
 * callback and the struct may then be reused by tern_bench_conn_start().
 */
#ifndef TERN_BENCH_CONN_H
#define TERN_BENCH_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <expat.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "scram.h"

enum tern_bench_mech {
    TERN_BENCH_MECH_SCRAM_SHA1,   /* SCRAM-SHA-1 */
    TERN_BENCH_MECH_SCRAM_SHA256, /* SCRAM-SHA-256 */
    TERN_BENCH_MECH_PLAIN,        /* PLAIN (over TLS only) */
};

/** Where a connection is in its life. */
enum tern_bench_state {
    TERN_BENCH_IDLE,       /* not started, or closed */
    TERN_BENCH_CONNECTING, /* TCP connect in progress */
    TERN_BENCH_FEATURES1,  /* plain stream opened, waiting for <starttls/> in features */
    TERN_BENCH_PROCEED,    /* <starttls/> sent */
    TERN_BENCH_HANDSHAKE,  /* TLS handshake */
    TERN_BENCH_FEATURES2,  /* TLS stream opened, waiting for mechanisms */
    TERN_BENCH_AUTH,       /* <auth/> sent */
    TERN_BENCH_FEATURES3,  /* authenticated stream opened, waiting for <bind/> */
    TERN_BENCH_BIND,       /* bind IQ sent */
    TERN_BENCH_SM,         /* XEP-0198 <enable/> sent */
    TERN_BENCH_PUSH,       /* XEP-0357 enable IQ sent */
    TERN_BENCH_READY,      /* logged in; workload traffic flows */
    TERN_BENCH_CLOSING,    /* close requested, waiting for libuv */
};

struct tern_bench_conn;

/** Fires once when the login sequence completed. May append and flush. */
typedef void (*tern_bench_ready_fn)(struct tern_bench_conn *c);

/** A <message/> with a <body/> arrived on a ready connection; body is not NUL-terminated. */
typedef void (*tern_bench_message_fn)(struct tern_bench_conn *c, const char *body, size_t len);

/**
 * The connection is closed and its resources are released; error is NULL for
 * a close the workload asked for, else a short static reason. The struct may
 * be reused or freed from here.
 */
typedef void (*tern_bench_closed_fn)(struct tern_bench_conn *c, const char *error);

/** Settings and shared state of every connection of one run. */
struct tern_bench_client {
    uv_loop_t *loop;                      /* the one loop */
    SSL_CTX *ssl_ctx;                     /* client context, made by tern_bench_client_init */
    struct sockaddr_storage addr;         /* server address */
    int direct_tls;                       /* TLS from the first byte (XEP-0368) */
    const char *domain;                   /* stream to= and SNI */
    const char *user_prefix;              /* users are <prefix><index> */
    const char *password;                 /* shared by every user */
    enum tern_bench_mech mech;            /* SASL mechanism */
    int sm;                               /* send XEP-0198 <enable resume='true'/> */
    const char *push_jid;                 /* XEP-0357 app server JID, NULL = no push enable */
    int presence;                         /* send initial presence after bind */
    struct tern_bench_scram_cache *cache; /* one per user index, or NULL */
    struct tern_bench_scram_cache shared; /* used without per-user entries: a hit when
                                             users share a salt (the harness makes peers'
                                             accounts that way to save setup time) */
    uint32_t ncache;                      /* entries in cache */
    tern_bench_ready_fn on_ready;         /* see above */
    tern_bench_message_fn on_message;     /* see above */
    tern_bench_closed_fn on_closed;       /* see above */
    void *data;                           /* the workload's */
    char rbuf[64 * 1024];                 /* every read lands here; consumed before the next */
};

/** Per-connection state. Zero it once; start() and the close path keep it consistent. */
struct tern_bench_conn {
    uv_tcp_t tcp;                     /* the socket; data points back here */
    uv_connect_t connect_req;         /* pending connect */
    struct tern_bench_client *client; /* shared settings */
    uint32_t index;                   /* user number; the JID is prefix+index */
    enum tern_bench_state state;      /* see enum */
    SSL *ssl;                         /* NULL before STARTTLS */
    BIO *rbio;                        /* ciphertext from the socket, read by OpenSSL */
    BIO *wbio;                        /* ciphertext written by OpenSSL, to the socket */
    XML_Parser xp;                    /* incoming stream */
    int restart;                      /* reset the parser after this feed */
    int depth;                        /* element depth; 1 = top-level stanza */
    int top;                          /* kind of the current top-level element */
    int child;                        /* kind of the depth-2 element */
    int feat;                         /* features seen (bit set) */
    int capture;                      /* collect character data into text */
    char iq_type[8];                  /* type of the current <iq/> */
    char iq_id[40];                   /* id of the current <iq/> */
    char iq_from[200];                /* from of the current <iq/> */
    size_t text_len;                  /* bytes in text */
    char text[2048];                  /* captured character data, bounded */
    struct tern_bench_scram scram;    /* exchange in progress */
    char *out;                        /* plaintext waiting for flush() */
    size_t out_len;                   /* bytes in out */
    size_t out_cap;                   /* allocated bytes of out */
    size_t queued;                    /* ciphertext bytes in uv_write requests */
    uint32_t sm_in;                   /* XEP-0198 h: stanzas received since enable */
    int sm_on;                        /* the server answered <enabled/> */
    int handles;                      /* libuv handles not yet closed (0 or 1) */
    uint64_t t_start;                 /* when start() was called, ns */
    uint64_t t_ready;                 /* when the login finished, ns */
    const char *error;                /* why it is closing, NULL = asked to */
    void *data;                       /* the workload's */
};

/** Most plaintext a connection may hold unflushed plus queued ciphertext (bytes). */
#define TERN_BENCH_CONN_OUT_MAX (4u << 20)

/** Monotonic clock in nanoseconds. */
uint64_t tern_bench_now_ns(void);

/**
 * Make the SSL_CTX (TLS 1.3 only unless tls12; record buffers released while
 * idle if release_buffers) and set up c. Returns 0 or -1.
 */
int tern_bench_client_init(struct tern_bench_client *c, uv_loop_t *loop, int tls12,
                           int release_buffers);

/** Free the SSL_CTX. */
void tern_bench_client_cleanup(struct tern_bench_client *c);

/**
 * Start logging in user index on c (IDLE). Returns 0, or a negative libuv
 * error if the socket could not even be created (no callback then).
 */
int tern_bench_conn_start(struct tern_bench_conn *c, struct tern_bench_client *client,
                          uint32_t index);

/**
 * Append len bytes of plaintext XML to c's output. Returns 0, or -1 when the
 * connection is not ready or its output is over TERN_BENCH_CONN_OUT_MAX (the
 * caller counts that as back-pressure).
 */
int tern_bench_conn_append(struct tern_bench_conn *c, const char *xml, size_t len);

/** Reserve room for n more plaintext bytes; returns where to write them, or NULL as append. */
char *tern_bench_conn_reserve(struct tern_bench_conn *c, size_t n);

/** Encrypt and send what was appended. */
void tern_bench_conn_flush(struct tern_bench_conn *c);

/**
 * Close c. With graceful set, first send </stream:stream>. error (static
 * string or NULL) is reported to on_closed. Safe to call twice.
 */
void tern_bench_conn_close(struct tern_bench_conn *c, int graceful, const char *error);

/**
 * Drop c without closing the stream: the socket is reset, as when a phone
 * loses its network. With XEP-0198 resumption on, the server hibernates the
 * session. on_closed follows with error (may be NULL).
 */
void tern_bench_conn_abort(struct tern_bench_conn *c, const char *error);

#endif
