/* Listening sockets that hand new connections to c2s. */
#ifndef TERN_SERVER_LISTENER_H
#define TERN_SERVER_LISTENER_H

#include <stddef.h>

#include <uv.h>

struct tern_shard;

/** Takes one pending connection off listener (called from its connection callback). */
typedef void (*tern_listener_accept_fn)(struct tern_shard *shard, uv_stream_t *listener,
                                        int direct_tls);

struct tern_listener {
    uv_tcp_t tcp;                   /* listening socket */
    tern_listener_accept_fn accept; /* who takes each connection (c2s, component) */
    struct tern_shard *shard;       /* receives the connections */
    int direct_tls;                 /* XEP-0368 port: TLS from the first byte */
    int open;                       /* tcp was initialised */
    char name[64];                  /* "127.0.0.1:5222", for logs */
};

/**
 * Bind address:port and listen. Returns 0 or a negative tern_err with a
 * message in err (e.g. "127.0.0.1:5222: address already in use").
 */
int tern_listener_start(struct tern_listener *l, struct tern_shard *shard, const char *address,
                        int port, int direct_tls, tern_listener_accept_fn accept, char *err,
                        size_t errlen);

/** Stop listening (closes the handle; memory is the caller's). */
void tern_listener_close(struct tern_listener *l);

#endif
