/*
 * ternctl: account administration. A short-lived command, so it calls the
 * store backend directly and blocks; WAL and the busy timeout let it share
 * the database file with a running ternd.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/control.h"
#include "store/store.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"

#define EXIT_FAIL    TERN__CTL_EXIT_FAIL
#define EXIT_USAGE   TERN__CTL_EXIT_USAGE
#define PASSWORD_BUF (TERN__CTL_PASSWORD_MAX + 1) /* one password line, NUL included */

static const char usage_text[] =
    "usage: ternctl [-c FILE] COMMAND [USER]\n"
    "\n"
    "  ternctl [-c FILE] adduser USER    create USER; password read from stdin\n"
    "  ternctl [-c FILE] import [--skip-existing] [ACCOUNTS]\n"
    "                                    create every account listed in the file ACCOUNTS\n"
    "                                    (none or -: stdin), one 'USER PASSWORD' a line\n"
    "                                    (TAB or space between), all or none;\n"
    "                                    --skip-existing leaves existing accounts alone\n"
    "                                    instead of failing\n"
    "  ternctl [-c FILE] passwd USER     change USER's password; read from stdin\n"
    "  ternctl [-c FILE] deluser USER    delete USER\n"
    "  ternctl [-c FILE] listusers       print every user's bare JID, sorted\n"
    "  ternctl [-c FILE] push list USER  print USER's push registrations (XEP-0357), one\n"
    "                                    a line: JID, node, resource, created (tab-separated)\n"
    "  ternctl [-c FILE] push remove USER [JID [NODE]]\n"
    "                                    remove USER's push registrations: all, all of\n"
    "                                    one push service JID, or one JID and node\n"
    "  ternctl --help | -h               print this help\n"
    "\n"
    "  -c FILE   configuration file (default etc/ternd.yaml)\n"
    "  USER      a localpart (alice) or a bare JID of the configured domain\n"
    "            (alice@localhost)\n"
    "\n"
    "The password is one line on stdin; on a terminal it is asked twice without\n"
    "echo. import: see docs/ternctl.md for the format. Exit status: 0 done,\n"
    "1 failed, 2 bad arguments.\n";

/* ---- reading a password ------------------------------------------------------ */

static struct termios saved_termios;      /* terminal settings to restore */
static volatile sig_atomic_t echo_is_off; /* saved_termios must be restored */

/* Put the echo back if we are killed while it is off, then die as asked. */
static void on_signal(int sig) {
    if (echo_is_off)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    signal(sig, SIG_DFL);
    raise(sig);
}

/*
 * Read one line from fd into buf without stdio (whose buffers would keep a
 * copy of the password). Returns the length, or -1 on EOF before any byte
 * (no password given), -2 if the line does not fit, -3 on a read error.
 */
static int read_line(int fd, char *buf, size_t size) {
    size_t len = 0;
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -3;
        if (n == 0) {
            if (len == 0)
                return -1;
            break;
        }
        if (c == '\n')
            break;
        if (len + 1 >= size) {
            tern_memzero(&c, sizeof c);
            return -2;
        }
        buf[len++] = c;
    }
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    return (int)len;
}

/* Prompt on stderr and read a line from the terminal on stdin with echo off. */
static int read_line_noecho(const char *prompt, char *buf, size_t size) {
    struct termios noecho;
    if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
        return -3;
    noecho = saved_termios;
    noecho.c_lflag &= ~(tcflag_t)ECHO;
    noecho.c_lflag |= ECHONL; /* still show the newline, so the output stays tidy */
    fputs(prompt, stderr);
    fflush(stderr);
    echo_is_off = 1;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) < 0) {
        echo_is_off = 0;
        return -3;
    }
    int n = read_line(STDIN_FILENO, buf, size);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    echo_is_off = 0;
    return n;
}

/*
 * Get the new password into pw (PASSWORD_BUF bytes) and check it against
 * the rules every password meets (tern__ctl_check_password). Prints why and
 * returns -1 on failure. The caller wipes pw whatever the result.
 */
static int get_password(const char *jid, char *pw) {
    int n;
    if (isatty(STDIN_FILENO)) {
        char again[PASSWORD_BUF];
        char prompt[TERN_JID_PART_MAX * 2 + 64];
        snprintf(prompt, sizeof prompt, "New password for %s: ", jid);
        n = read_line_noecho(prompt, pw, PASSWORD_BUF);
        if (n >= 0) {
            int m = read_line_noecho("Repeat the password: ", again, sizeof again);
            if (m >= 0 && (m != n || memcmp(pw, again, (size_t)n) != 0)) {
                fprintf(stderr, "ternctl: the passwords do not match\n");
                n = -4;
            } else if (m < 0) {
                n = m;
            }
        }
        tern_memzero(again, sizeof again);
    } else {
        n = read_line(STDIN_FILENO, pw, PASSWORD_BUF);
    }
    switch (n) {
    case -1: fprintf(stderr, "ternctl: no password given on stdin\n"); return -1;
    case -2:
        fprintf(stderr, "ternctl: password too long (at most %d bytes)\n", TERN__CTL_PASSWORD_MAX);
        return -1;
    case -3: fprintf(stderr, "ternctl: cannot read the password: %s\n", strerror(errno)); return -1;
    case -4: return -1;
    }
    char why[200];
    if (tern__ctl_check_password(pw, (size_t)n, why, sizeof why) < 0) {
        fprintf(stderr, "ternctl: %s\n", why);
        return -1;
    }
    return 0;
}

/*
 * Read a password and derive its SCRAM credentials. The password is wiped
 * here; only the derived keys leave this function.
 */
static int make_creds(const char *jid, int iterations, struct tern_scram_creds *creds) {
    char pw[PASSWORD_BUF];
    int ret = -1;

    if (get_password(jid, pw) < 0)
        goto fail;
    /* get_password() checked it, so only an internal error is left. */
    int rc = tern_scram_creds_make(creds, pw, iterations);
    if (rc < 0) {
        fprintf(stderr, "ternctl: cannot derive the SCRAM keys: %s\n", tern_strerror(rc));
        goto fail;
    }
    ret = 0;
fail:
    tern_memzero(pw, sizeof pw);
    return ret;
}

/* ---- users ------------------------------------------------------------------- */

/*
 * The prepared localpart named by arg ("alice" or "alice@DOMAIN"), or NULL
 * after printing why it is not a user of this server.
 */
static char *user_from_arg(const char *arg, const struct tern_config *cfg) {
    char why[TERN_JID_PART_MAX + 300];
    char *user;
    if (tern__ctl_prep_user(arg, cfg, &user, why, sizeof why) < 0)
        fprintf(stderr, "ternctl: %s\n", why);
    return user;
}

static int cmd_adduser(struct tern_store_backend *b, const struct tern_config *cfg,
                       const char *user, const char *jid) {
    struct tern_scram_creds creds;
    int ret = EXIT_FAIL;

    /* Refuse a taken name before asking for a password. */
    int rc = b->ops->account_get(b, user, &creds);
    if (rc == 0) {
        fprintf(stderr, "ternctl: user %s already exists\n", jid);
        goto fail;
    }
    if (rc != TERN_E_NOTFOUND) {
        tern__ctl_store_error(jid, rc);
        goto fail;
    }
    if (make_creds(jid, cfg->scram_iterations, &creds) < 0)
        goto fail;
    rc = b->ops->account_create(b, user, &creds);
    if (rc == TERN_E_EXISTS) {
        fprintf(stderr, "ternctl: user %s already exists\n", jid);
        goto fail;
    }
    if (rc < 0) {
        tern__ctl_store_error(jid, rc);
        goto fail;
    }
    printf("ternctl: user %s created\n", jid);
    ret = 0;
fail:
    tern_memzero(&creds, sizeof creds);
    return ret;
}

static int cmd_passwd(struct tern_store_backend *b, const struct tern_config *cfg, const char *user,
                      const char *jid) {
    struct tern_scram_creds creds;
    int ret = EXIT_FAIL;

    /* Refuse an unknown user before asking for a password. */
    int rc = b->ops->account_get(b, user, &creds);
    if (rc == 0) {
        if (make_creds(jid, cfg->scram_iterations, &creds) < 0)
            goto fail;
        /* Deleted meanwhile: account_set says so. */
        rc = b->ops->account_set(b, user, &creds);
    }
    if (rc == TERN_E_NOTFOUND) {
        fprintf(stderr, "ternctl: no such user: %s\n", jid);
        goto fail;
    }
    if (rc < 0) {
        tern__ctl_store_error(jid, rc);
        goto fail;
    }
    printf("ternctl: password changed for %s\n", jid);
    ret = 0;
fail:
    tern_memzero(&creds, sizeof creds);
    return ret;
}

/*
 * Ask a running ternd over its control socket (server/control.h). Returns 1
 * with its one-line answer in reply, 0 if no server listens there, -1 on a
 * failed exchange.
 */
static int ask_server(const struct tern_config *cfg, const char *request, char *reply, size_t len) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    tern_control_path(cfg->data_dir, sa.sun_path, sizeof sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return e == ENOENT || e == ECONNREFUSED ? 0 : -1;
    }
    size_t rlen = strlen(request);
    if (write(fd, request, rlen) != (ssize_t)rlen) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (got < len - 1 && poll(&pfd, 1, 30000) == 1) {
        ssize_t n = read(fd, reply + got, len - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(reply, '\n', got))
            break;
    }
    close(fd);
    reply[got] = '\0';
    char *nl = strchr(reply, '\n');
    if (!nl)
        return -1;
    *nl = '\0';
    return 1;
}

static int cmd_deluser(struct tern_store_backend *b, const struct tern_config *cfg,
                       const char *user, const char *jid) {
    /* A running server does it, so that connected contacts are told. */
    char request[1100], reply[300];
    snprintf(request, sizeof request, "deluser %s\n", user);
    int asked = ask_server(cfg, request, reply, sizeof reply);
    int rc;
    if (asked == 1) {
        if (strcmp(reply, "ok") == 0)
            rc = 0;
        else if (strcmp(reply, "error notfound") == 0)
            rc = TERN_E_NOTFOUND;
        else {
            fprintf(stderr, "ternctl: ternd refused to delete %s: %s\n", jid, reply);
            return EXIT_FAIL;
        }
    } else if (asked < 0) {
        fprintf(stderr, "ternctl: no answer from ternd on its control socket in %s\n",
                cfg->data_dir);
        return EXIT_FAIL;
    } else {
        char **holders = NULL;
        uint64_t *versions = NULL;
        size_t n = 0;
        rc = b->ops->begin(b);
        if (rc == 0) {
            rc = tern_store_account_purge(b, user, jid, &holders, &versions, &n);
            rc = rc == 0 ? b->ops->commit(b) : (b->ops->rollback(b), rc);
        }
        tern_store_free_list(holders, n);
        free(versions);
    }
    if (rc == TERN_E_NOTFOUND) {
        fprintf(stderr, "ternctl: no such user: %s\n", jid);
        return EXIT_FAIL;
    }
    if (rc < 0) {
        tern__ctl_store_error(jid, rc);
        return EXIT_FAIL;
    }
    printf("ternctl: user %s deleted\n", jid);
    return 0;
}

static int cmd_listusers(struct tern_store_backend *b, const struct tern_config *cfg) {
    char **users = NULL;
    size_t n = 0;
    int rc = b->ops->account_list(b, &users, &n);
    if (rc < 0) {
        tern__ctl_store_error("listusers", rc);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s@%s\n", users[i], cfg->domain);
    tern_store_free_list(users, n);
    return 0;
}

/* ---- push registrations (XEP-0357) ----------------------------------------------- */

/* Refuse an unknown user with the usual message; 0 if the account exists. */
static int need_account(struct tern_store_backend *b, const char *user, const char *jid) {
    struct tern_scram_creds creds;
    int rc = b->ops->account_get(b, user, &creds);
    tern_memzero(&creds, sizeof creds);
    if (rc == TERN_E_NOTFOUND)
        fprintf(stderr, "ternctl: no such user: %s\n", jid);
    else if (rc < 0)
        tern__ctl_store_error(jid, rc);
    return rc;
}

static int cmd_push_list(struct tern_store_backend *b, const char *user, const char *jid) {
    struct tern_push_reg *regs = NULL;
    size_t n = 0;
    if (need_account(b, user, jid) < 0)
        return EXIT_FAIL;
    int rc = b->ops->push_get(b, user, &regs, &n);
    if (rc < 0) {
        tern__ctl_store_error(jid, rc);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        char created[32];
        time_t t = (time_t)(regs[i].created_at / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%s\t%s\t%s\t%s\n", regs[i].jid, regs[i].node,
               regs[i].resource ? regs[i].resource : "-", created);
    }
    tern_push_regs_free(regs, n);
    return 0;
}

static int cmd_push_remove(struct tern_store_backend *b, const char *user, const char *jid,
                           const char *service, const char *node) {
    char *prepared = NULL;
    size_t removed = 0;
    if (service) {
        /* Stored prepared: compare the same way the server does. */
        struct tern_jid j;
        if (tern_jid_parse(&j, service) < 0) {
            fprintf(stderr, "ternctl: '%s': not a valid JID\n", service);
            return EXIT_FAIL;
        }
        prepared = tern_jid_full(&j);
        tern_jid_free(&j);
    }
    int ret = EXIT_FAIL;
    if (need_account(b, user, jid) < 0)
        goto fail;
    int rc = b->ops->push_del(b, user, prepared, node, &removed);
    if (rc < 0) {
        tern__ctl_store_error(jid, rc);
        goto fail;
    }
    printf("ternctl: removed %zu push registration%s of %s\n", removed, removed == 1 ? "" : "s",
           jid);
    ret = 0;
fail:
    free(prepared);
    return ret;
}

/* ---- main -------------------------------------------------------------------- */

static int usage_error(const char *msg, const char *arg) {
    if (msg)
        fprintf(stderr, "ternctl: %s%s\n", msg, arg ? arg : "");
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"config", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = "etc/ternd.yaml";
    int c;

    opterr = 0;
    /* "+": stop at the command, so a USER that starts with '-' is not an option. */
    while ((c = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case ':':
        case '?':
        default:
            if (optopt == 'c')
                return usage_error("option -c needs a FILE", NULL);
            return usage_error("unknown option ", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("no command given", NULL);
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    const char *push_cmd = NULL;
    if (strcmp(cmd, "push") == 0) {
        /* push list USER | push remove USER [JID [NODE]]: USER comes after the verb. */
        if (nargs < 1)
            return usage_error("expected list or remove after ", cmd);
        push_cmd = argv[optind + 1];
        int list = strcmp(push_cmd, "list") == 0;
        if (!list && strcmp(push_cmd, "remove") != 0)
            return usage_error("unknown push command ", push_cmd);
        if (nargs < 2 || nargs > (list ? 2 : 4))
            return usage_error(list ? "expected one USER after push list"
                                    : "expected USER [JID [NODE]] after push remove",
                               NULL);
        optind++;
        nargs--;
    }
    int import = strcmp(cmd, "import") == 0;
    const char *import_path = NULL;
    int skip_existing = 0;
    if (import) {
        /* import [--skip-existing] [--] [ACCOUNTS]; "-" (or none) is stdin. */
        int opts_done = 0;
        for (int i = optind + 1; i < argc; i++) {
            const char *a = argv[i];
            if (!opts_done && strcmp(a, "--skip-existing") == 0)
                skip_existing = 1;
            else if (!opts_done && strcmp(a, "--") == 0)
                opts_done = 1;
            else if (!opts_done && a[0] == '-' && a[1] != '\0')
                return usage_error("unknown import option ", a);
            else if (import_path)
                return usage_error("import reads one ACCOUNTS file; extra argument ", a);
            else
                import_path = a;
        }
        if ((!import_path || strcmp(import_path, "-") == 0) && isatty(STDIN_FILENO))
            return usage_error("import: give the ACCOUNTS file, or pipe it to stdin (passwords "
                               "typed on a terminal would show)",
                               NULL);
    }
    int wants_user = push_cmd || strcmp(cmd, "adduser") == 0 || strcmp(cmd, "passwd") == 0 ||
                     strcmp(cmd, "deluser") == 0;
    if (!wants_user && !import && strcmp(cmd, "listusers") != 0)
        return usage_error("unknown command ", cmd);
    if (!push_cmd && !import && nargs != (wants_user ? 1 : 0))
        return usage_error(wants_user ? "expected one USER after " : "no argument expected after ",
                           cmd);

    /* Quiet by default: only problems, not the store's info lines. */
    tern_log_set_level(TERN_LOG_WARN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);

    struct tern_config cfg;
    struct tern_store_backend *backend = NULL;
    char *user = NULL, *jid = NULL;
    char err[1024];
    int ret = EXIT_FAIL;

    memset(&cfg, 0, sizeof cfg);
    if (tern_config_load(&cfg, config_path, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        goto fail;
    }
    if (wants_user) {
        user = user_from_arg(argv[optind + 1], &cfg);
        if (!user)
            goto fail;
        size_t len = strlen(user) + 1 + strlen(cfg.domain) + 1;
        jid = tern_malloc(len);
        snprintf(jid, len, "%s@%s", user, cfg.domain);
    }
    if (tern_store_backend_open(&cfg, &backend, err, sizeof err) < 0) {
        fprintf(stderr, "ternctl: %s\n", err);
        goto fail;
    }

    if (push_cmd && strcmp(push_cmd, "list") == 0)
        ret = cmd_push_list(backend, user, jid);
    else if (push_cmd)
        ret = cmd_push_remove(backend, user, jid, nargs >= 2 ? argv[optind + 2] : NULL,
                              nargs >= 3 ? argv[optind + 3] : NULL);
    else if (strcmp(cmd, "adduser") == 0)
        ret = cmd_adduser(backend, &cfg, user, jid);
    else if (strcmp(cmd, "passwd") == 0)
        ret = cmd_passwd(backend, &cfg, user, jid);
    else if (strcmp(cmd, "deluser") == 0)
        ret = cmd_deluser(backend, &cfg, user, jid);
    else if (import)
        ret = tern__ctl_import(backend, &cfg, import_path, skip_existing);
    else
        ret = cmd_listusers(backend, &cfg);

fail:
    tern_store_backend_close(&backend);
    free(user);
    free(jid);
    tern_config_free(&cfg);
    if (fflush(stdout) != 0 && ret == 0)
        ret = EXIT_FAIL;
    return ret;
}
