/* ternd: the Tern XMPP server. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/c2s.h"
#include "server/certgen.h"
#include "server/component.h"
#include "server/control.h"
#include "server/module.h"
#include "server/iplimits.h"
#include "server/iqtrack.h"
#include "server/listener.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "server/tls.h"
#include "store/store.h"

#define COMP "ternd"
/* How long connections get to say goodbye at shutdown. */
#define SHUTDOWN_GRACE_MS 3000

static void usage(FILE *f) {
    fprintf(f, "usage: ternd [-c FILE] [--check-config]\n"
               "  -c, --config FILE   configuration file (default etc/ternd.yaml)\n"
               "      --check-config  validate the configuration and exit\n"
               "  -V, --version       print the version and exit\n"
               "  -h, --help          this help\n");
}

struct daemon {
    struct tern_config cfg;         /* configuration */
    struct tern_server server;      /* shared context */
    struct tern_shard shard0;       /* the one shard for now */
    struct tern_listener c2s;       /* STARTTLS listener */
    struct tern_listener c2s_tls;   /* direct TLS listener */
    struct tern_listener component; /* XEP-0114 listener */
    struct tern_control *control;   /* ternctl's socket */
    uv_signal_t sigterm, sigint;    /* shutdown triggers */
    uv_timer_t grace;               /* shutdown deadline */
    int stopping;                   /* shutdown began */
};

static struct daemon d;

static void finish(void) {
    if (uv_is_closing((uv_handle_t *)&d.grace))
        return;
    uv_close((uv_handle_t *)&d.grace, NULL);
    uv_close((uv_handle_t *)&d.sigterm, NULL);
    uv_close((uv_handle_t *)&d.sigint, NULL);
    tern_shard_close(&d.shard0);
}

/* A shard's last client connection or last component went: done when both did. */
static void on_idle(struct tern_shard *s) {
    if (d.stopping && s->nconns == 0 && tern_component_count(s) == 0)
        finish();
}

static void on_grace(uv_timer_t *t) {
    tern_warn(COMP, "%zu connections still open after %d ms, closing them",
              d.shard0.nconns + tern_component_count(&d.shard0), SHUTDOWN_GRACE_MS);
    /* Connections still draining are cut; their close callbacks run as the loop ends. */
    finish();
}

static void on_signal(uv_signal_t *sig, int signum) {
    if (d.stopping)
        return;
    d.stopping = 1;
    d.server.shutting_down = 1;
    tern_info(COMP, "%s received, shutting down (%zu connections)", strsignal(signum),
              d.shard0.nconns);
    tern_listener_close(&d.c2s);
    tern_listener_close(&d.c2s_tls);
    tern_listener_close(&d.component);
    tern_control_close(&d.control);
    tern_iq_cancel_all(&d.shard0);
    d.shard0.on_idle = on_idle;
    uv_timer_start(&d.grace, on_grace, SHUTDOWN_GRACE_MS, 0);
    tern_shard_close_all(&d.shard0, TERN_SE_SYSTEM_SHUTDOWN, "the server is shutting down");
    tern_component_close_all(&d.shard0, TERN_SE_SYSTEM_SHUTDOWN, "the server is shutting down");
    on_idle(&d.shard0);
}

static int mkdir_p(const char *path) {
    char *p = tern_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *s = '/';
        }
    }
    int rc = mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static void close_walk(uv_handle_t *h, void *arg) {
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv) {
    const char *config_path = "etc/ternd.yaml";
    int check_only = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config_path = optarg; break;
        case 'C': check_only = 1; break;
        case 'V': printf("ternd 0.1.0\n"); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    char err[1024];
    tern_config_defaults(&d.cfg);
    if (tern_config_load(&d.cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "ternd: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("%s: configuration OK\n", config_path);
        tern_config_free(&d.cfg);
        return 0;
    }
    tern_log_set_level(d.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);

    if (mkdir_p(d.cfg.data_dir) != 0) {
        tern_error(COMP, "%s: cannot create data directory: %s", d.cfg.data_dir, strerror(errno));
        return 1;
    }
    if (!d.cfg.tls_cert) {
        size_t n = strlen(d.cfg.data_dir) + strlen(d.cfg.domain) + 8;
        d.cfg.tls_cert = tern_malloc(n);
        d.cfg.tls_key = tern_malloc(n);
        snprintf(d.cfg.tls_cert, n, "%s/%s.crt", d.cfg.data_dir, d.cfg.domain);
        snprintf(d.cfg.tls_key, n, "%s/%s.key", d.cfg.data_dir, d.cfg.domain);
        int created = 0;
        if (tern_certgen_ensure(d.cfg.domain, d.cfg.tls_cert, d.cfg.tls_key, &created, err,
                                sizeof err) != 0) {
            tern_error(COMP, "%s", err);
            return 1;
        }
        if (created)
            tern_info(COMP, "generated a self-signed certificate for %s in %s", d.cfg.domain,
                      d.cfg.tls_cert);
    }

    struct tern_server *srv = &d.server;
    srv->cfg = &d.cfg;
    if (tern_tls_ctx_new(d.cfg.tls_cert, d.cfg.tls_key, &srv->tls, err, sizeof err) != 0) {
        tern_error(COMP, "%s", err);
        return 1;
    }
    struct tern_store_backend *backend = NULL;
    if (tern_store_backend_open(&d.cfg, &backend, err, sizeof err) != 0) {
        tern_error(COMP, "%s", err);
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    if (tern_store_new(loop, backend, &srv->store) != 0) {
        tern_error(COMP, "cannot start the store thread");
        return 1;
    }
    srv->sessions = tern_sessions_new();
    struct tern_iplimits_conf ipc = {
        .max_conns_per_ip = d.cfg.max_connections_per_ip,
        .max_failures = d.cfg.auth_max_failures,
        .window_ms = (uint64_t)d.cfg.auth_failure_window * 1000,
        .ban_ms = (uint64_t)d.cfg.auth_ban_time * 1000,
    };
    srv->ips = tern_iplimits_new(&ipc);
    struct tern_shard *shards[1] = {&d.shard0};
    srv->shards = shards;
    srv->nshards = 1;
    tern_shard_init(&d.shard0, 0, loop, srv);

    if (d.cfg.c2s.port && tern_listener_start(&d.c2s, &d.shard0, d.cfg.c2s.address, d.cfg.c2s.port,
                                              0, tern_c2s_accept, err, sizeof err) != 0) {
        tern_error(COMP, "%s", err);
        return 1;
    }
    if (d.cfg.c2s_tls.port &&
        tern_listener_start(&d.c2s_tls, &d.shard0, d.cfg.c2s_tls.address, d.cfg.c2s_tls.port, 1,
                            tern_c2s_accept, err, sizeof err) != 0) {
        tern_error(COMP, "%s", err);
        return 1;
    }
    /* XEP-0114: the listener opens only when some component is configured. */
    tern_component_init(&d.cfg);
    if (d.cfg.ncomponents && d.cfg.component.port &&
        tern_listener_start(&d.component, &d.shard0, d.cfg.component.address, d.cfg.component.port,
                            0, tern_component_accept, err, sizeof err) != 0) {
        tern_error(COMP, "%s", err);
        return 1;
    }
    if (tern_modules_init(srv) != 0)
        return 1;
    if (tern_control_start(&d.shard0, &d.control, err, sizeof err) != 0)
        tern_warn(COMP, "%s; ternctl will work on the database alone", err);
    uv_signal_init(loop, &d.sigterm);
    uv_signal_init(loop, &d.sigint);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_timer_init(loop, &d.grace);

    tern_info(COMP,
              "ready: domain %s; c2s %s (STARTTLS%s), %s (direct TLS); components %s (%zu); "
              "store %s",
              d.cfg.domain, d.cfg.c2s.port ? d.c2s.name : "off",
              d.cfg.starttls_required ? " required" : " optional",
              d.cfg.c2s_tls.port ? d.c2s_tls.name : "off",
              d.cfg.ncomponents && d.cfg.component.port ? d.component.name : "off",
              d.cfg.ncomponents, d.cfg.store_path);

    uv_run(loop, UV_RUN_DEFAULT);

    /* Flush the store first (its completions run here), then close whatever
     * the loop still holds (connections cut at the deadline). */
    tern_store_close(&srv->store);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    tern_modules_fini(srv);
    tern_component_fini();
    tern_sessions_free(&srv->sessions);
    tern_iplimits_free(&srv->ips);
    tern_tls_ctx_free(&srv->tls);
    uv_loop_close(loop);
    tern_info(COMP, "stopped");
    tern_config_free(&d.cfg);
    return 0;
}
