#include "server/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "mod/account.h"
#include "server/server.h"
#include "server/shard.h"
#include "xmpp/jid.h"

#define COMP "control"
/* Longest request line. */
#define MAX_LINE 1024

struct tern_control {
    uv_pipe_t pipe;           /* listening socket */
    struct tern_shard *shard; /* where requests run */
    char path[1024];          /* socket file */
};

/* One connected ternctl. */
struct client {
    uv_pipe_t pipe;           /* the connection */
    struct tern_shard *shard; /* where it runs */
    char line[MAX_LINE + 1];  /* request so far */
    size_t len;               /* bytes in line */
    int busy;                 /* a request is running: ignore further input */
    int closing;              /* uv_close called */
    int pending;              /* callbacks still to come (request, write) */
};

static void client_closed(uv_handle_t *h) {
    struct client *cl = h->data;
    if (cl->pending == 0)
        free(cl);
    else
        cl->closing = 2; /* freed when the last callback runs */
}

static void client_close(struct client *cl) {
    if (cl->closing)
        return;
    cl->closing = 1;
    uv_close((uv_handle_t *)&cl->pipe, client_closed);
}

static void client_release(struct client *cl) {
    if (--cl->pending == 0 && cl->closing == 2)
        free(cl);
}

struct answer {
    uv_write_t req;    /* libuv request */
    struct client *cl; /* whose */
    char text[256];    /* the answer line */
};

static void on_answer_written(uv_write_t *req, int status) {
    struct answer *a = (struct answer *)req;
    struct client *cl = a->cl;
    free(a);
    client_close(cl);
    client_release(cl);
}

static void answer(struct client *cl, const char *fmt, const char *arg) {
    if (cl->closing)
        return;
    struct answer *a = tern_calloc(1, sizeof *a);
    a->cl = cl;
    snprintf(a->text, sizeof a->text, fmt, arg);
    uv_buf_t b = uv_buf_init(a->text, (unsigned)strlen(a->text));
    cl->pending++;
    if (uv_write(&a->req, (uv_stream_t *)&cl->pipe, &b, 1, on_answer_written) != 0) {
        free(a);
        cl->pending--;
        client_close(cl);
    }
}

static void on_deleted(void *ud, int err) {
    struct client *cl = ud;
    if (err == 0)
        answer(cl, "ok\n", NULL);
    else if (err == TERN_E_NOTFOUND)
        answer(cl, "error notfound\n", NULL);
    else
        answer(cl, "error %s\n", tern_strerror(err));
    client_release(cl);
}

static void run_line(struct client *cl) {
    char *arg = strchr(cl->line, ' ');
    if (arg)
        *arg++ = '\0';
    cl->busy = 1;
    if (strcmp(cl->line, "deluser") == 0 && arg && *arg) {
        char *user = NULL;
        if (tern_jid_prep_local(arg, &user) != 0) {
            answer(cl, "error invalid username\n", NULL);
            return;
        }
        tern_info(COMP, "deleting account %s on request of ternctl", user);
        cl->pending++;
        tern_account_delete(cl->shard, user, on_deleted, cl);
        free(user);
        return;
    }
    answer(cl, "error unknown request '%s'\n", cl->line);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct client *cl = h->data;
    buf->base = cl->line + cl->len;
    buf->len = MAX_LINE - cl->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    struct client *cl = s->data;
    if (n < 0) {
        if (!cl->busy)
            client_close(cl);
        return;
    }
    if (cl->busy)
        return;
    cl->len += (size_t)n;
    cl->line[cl->len] = '\0';
    char *nl = memchr(cl->line, '\n', cl->len);
    if (nl) {
        *nl = '\0';
        uv_read_stop(s);
        run_line(cl);
    } else if (cl->len >= MAX_LINE) {
        cl->busy = 1;
        answer(cl, "error request too long\n", NULL);
    }
}

static void on_connection(uv_stream_t *server, int status) {
    struct tern_control *ctl = server->data;
    if (status < 0)
        return;
    struct client *cl = tern_calloc(1, sizeof *cl);
    cl->shard = ctl->shard;
    uv_pipe_init(ctl->shard->loop, &cl->pipe, 0);
    cl->pipe.data = cl;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
        client_close(cl);
        return;
    }
    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
}

static void control_closed(uv_handle_t *h) {
    free(h->data);
}

int tern_control_start(struct tern_shard *shard, struct tern_control **out, char *err,
                       size_t errlen) {
    struct tern_control *ctl = tern_calloc(1, sizeof *ctl);
    ctl->shard = shard;
    tern_control_path(shard->server->cfg->data_dir, ctl->path, sizeof ctl->path);
    unlink(ctl->path); /* a socket left by a server that did not stop cleanly */
    uv_pipe_init(shard->loop, &ctl->pipe, 0);
    ctl->pipe.data = ctl;
    int rc = uv_pipe_bind(&ctl->pipe, ctl->path);
    if (rc == 0 && chmod(ctl->path, 0600) != 0)
        rc = UV_EPERM;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ctl->pipe, 16, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot listen: %s", ctl->path, uv_strerror(rc));
        uv_close((uv_handle_t *)&ctl->pipe, control_closed);
        *out = NULL;
        return TERN_E_IO;
    }
    *out = ctl;
    return 0;
}

void tern_control_close(struct tern_control **ctl) {
    if (!*ctl)
        return;
    unlink((*ctl)->path);
    uv_close((uv_handle_t *)&(*ctl)->pipe, control_closed);
    *ctl = NULL;
}
