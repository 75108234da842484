#include "server/listener.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "server/c2s.h"
#include "server/shard.h"

static void on_connection(uv_stream_t *server, int status) {
    struct tern_listener *l = server->data;
    if (status < 0) {
        tern_warn("listener", "%s: accept failed: %s", l->name, uv_strerror(status));
        return;
    }
    l->accept(l->shard, server, l->direct_tls);
}

int tern_listener_start(struct tern_listener *l, struct tern_shard *shard, const char *address,
                        int port, int direct_tls, tern_listener_accept_fn accept, char *err,
                        size_t errlen) {
    struct sockaddr_storage sa;
    l->shard = shard;
    l->accept = accept;
    l->direct_tls = direct_tls;
    l->open = 0;
    if (strchr(address, ':'))
        snprintf(l->name, sizeof l->name, "[%s]:%d", address, port);
    else
        snprintf(l->name, sizeof l->name, "%s:%d", address, port);
    if (uv_ip4_addr(address, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(address, port, (struct sockaddr_in6 *)&sa) != 0) {
        snprintf(err, errlen, "%s: not an IP address", address);
        return TERN_E_INVAL;
    }
    uv_tcp_init(shard->loop, &l->tcp);
    l->tcp.data = l;
    l->open = 1;
    int rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot listen: %s", l->name, uv_strerror(rc));
        return TERN_E_IO;
    }
    return 0;
}

void tern_listener_close(struct tern_listener *l) {
    if (l->open && !uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, NULL);
}
