/*
 * The push sink: an XEP-0114 external component that plays the XEP-0357 app
 * server just enough to be measured against. It connects to the server's
 * component port, authenticates with the shared secret, answers every
 * pubsub publish IQ with a result and reports each notification (with the
 * pushed message body, when the server includes one).
 */
#ifndef TERN_BENCH_COMPONENT_H
#define TERN_BENCH_COMPONENT_H

#include <stddef.h>
#include <stdint.h>

#include <expat.h>
#include <uv.h>

struct tern_bench_component;

/** The handshake succeeded: notifications may arrive. */
typedef void (*tern_bench_comp_ready_fn)(struct tern_bench_component *k);

/**
 * One push notification for node; body is the last-message-body field (not
 * NUL-terminated, len 0 when the server sent none).
 */
typedef void (*tern_bench_comp_push_fn)(struct tern_bench_component *k, const char *node,
                                        const char *body, size_t len);

/** The connection is gone (error NULL when asked to close); the struct may be reused. */
typedef void (*tern_bench_comp_closed_fn)(struct tern_bench_component *k, const char *error);

/** One component connection. Zero it, set the settings, call start(). */
struct tern_bench_component {
    /* settings */
    uv_loop_t *loop;                     /* the one loop */
    struct sockaddr_storage addr;        /* server's component port */
    const char *jid;                     /* component domain, e.g. push.localhost */
    const char *secret;                  /* shared secret of XEP-0114 §3 */
    tern_bench_comp_ready_fn on_ready;   /* see above */
    tern_bench_comp_push_fn on_push;     /* see above */
    tern_bench_comp_closed_fn on_closed; /* see above */
    void *data;                          /* the workload's */
    /* state */
    uv_tcp_t tcp;             /* the socket */
    uv_connect_t connect_req; /* pending connect */
    XML_Parser xp;            /* incoming stream */
    int open;                 /* handle initialised, not yet closed */
    int ready;                /* <handshake/> received */
    int closing;              /* close requested */
    int depth;                /* element depth */
    int in_body_field;        /* inside <field var='last-message-body'> */
    int in_value;             /* collecting a <value/> of that field */
    char iq_id[64];           /* id of the current IQ */
    char iq_from[256];        /* from of the current IQ */
    char iq_type[8];          /* type of the current IQ */
    char node[128];           /* publish node of the current IQ */
    int is_publish;           /* the current IQ holds a pubsub publish */
    size_t body_len;          /* bytes in body */
    char body[512];           /* pushed body (start of it) */
    uint64_t pushes;          /* notifications received */
    uint64_t other_iqs;       /* IQs that were not publishes */
    uint64_t queued;          /* bytes in uv_write requests */
    const char *error;        /* why it closed */
    char rbuf[64 * 1024];     /* read buffer */
};

/** Connect and authenticate. Returns 0 or a negative libuv error (no callback then). */
int tern_bench_comp_start(struct tern_bench_component *k);

/** Close; on_closed follows from the libuv close callback. Safe to call twice. */
void tern_bench_comp_close(struct tern_bench_component *k, const char *error);

/** hex(SHA-1(stream_id || secret)), XEP-0114 §3; out has room for 41 bytes. */
void tern_bench_comp_digest(const char *stream_id, const char *secret, char out[41]);

#endif
