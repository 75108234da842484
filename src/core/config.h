/* ternd configuration: one YAML file validated against a schema at start. */
#ifndef TERN_CORE_CONFIG_H
#define TERN_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/** One listening endpoint. */
struct tern_listen {
    char *address; /* IP literal to bind, e.g. "127.0.0.1" or "::" */
    int port;      /* TCP port, 1-65535; 0 disables the listener */
};

/**
 * The whole configuration. Every string is owned by the struct and released
 * by tern_config_free(). Paths are as written in the file, except that a
 * relative path is resolved against data_dir only where documented.
 */
struct tern_config {
    char *path;     /* file this was loaded from (NULL for defaults) */
    char *domain;   /* the XMPP domain served, already lower-cased; default "localhost" */
    char *data_dir; /* directory for the database, generated certificate ...; default "var" */

    /* log: */
    int log_level; /* enum tern_log_level; default info */

    /* tls: */
    char *tls_cert; /* PEM certificate chain; NULL = generate self-signed in data_dir */
    char *tls_key;  /* PEM private key; NULL = generated alongside tls_cert */

    /* c2s: */
    struct tern_listen c2s;     /* STARTTLS listener; default 127.0.0.1:5222 */
    struct tern_listen c2s_tls; /* direct TLS listener (XEP-0368); default 127.0.0.1:5223 */
    int starttls_required;      /* bool; default 1 */

    /* storage: */
    char *store_backend; /* "sqlite" (only one for now) */
    char *store_path;    /* sqlite file; default "<data_dir>/tern.db" */

    /* auth: */
    int scram_iterations;    /* PBKDF2 iterations for new passwords; default 4096, min 4096 */
    int allow_plain;         /* bool: offer PLAIN (only ever over TLS); default 1 */
    int auth_max_failures;   /* failures per IP within auth_failure_window; default 5 */
    int auth_failure_window; /* seconds; default 30 */
    int auth_ban_time;       /* seconds an IP is refused after too many failures; default 300 */

    /* limits: */
    size_t max_stanza_size;         /* bytes after authentication; default 262144 */
    size_t max_preauth_stanza_size; /* bytes before authentication; default 8192 */
    int max_depth;                  /* element nesting inside a stanza; default 32 */
    int preauth_timeout;            /* seconds to authenticate; default 60 */
    int max_connections_per_ip;     /* concurrent; default 100 */
    int max_connections;            /* concurrent, whole server; default 100000 */

    /* offline: */
    int offline_max_messages; /* per-user offline quota (XEP-0160); default 1000, 0 = none */

    /* sm: stream management (XEP-0198) */
    int sm_enabled;            /* bool; default 1 */
    int sm_resume_timeout;     /* seconds a broken session waits for resumption; default 300 */
    int sm_max_resume_timeout; /* ceiling on what a client may ask for; default 3600 */
    int sm_max_queue;          /* unacked stanzas kept per session; default 500 */
    int sm_ack_timeout;        /* seconds an <r/> may stay unanswered; default 60 */
    int sm_request_every;      /* send <r/> after this many stanzas; default 5 */
    int sm_request_interval;   /* send <r/> this many seconds after an unacked stanza; default 30 */

    /* csi: client state indication (XEP-0352) */
    int csi_enabled;    /* bool; default 1 */
    int csi_max_buffer; /* stanzas held while inactive before a flush; default 100 */

    /* component: external components (XEP-0114) */
    struct tern_listen component; /* plain TCP listener; default 127.0.0.1:5347 */

    /* components: component domain -> shared secret, in file order */
    char **component_domains; /* lower-cased domains, ncomponents entries */
    char **component_secrets; /* their secrets (zeroed when freed) */
    size_t ncomponents;       /* entries in both arrays; 0 = none (no listener) */

    /* push: notifications to app servers (XEP-0357, src/mod/push.c) */
    int push_max_devices;        /* registrations kept per user (oldest evicted); default 5 */
    int push_timeout;            /* seconds a publish may wait for its answer; default 30 */
    int push_max_errors;         /* consecutive publish errors that remove one; default 16 */
    int push_max_queue;          /* publishes in flight, whole server; default 10000 */
    int push_include_sender;     /* bool: last-message-sender in notifications; default 0 */
    int push_include_body;       /* bool: the real message text in notifications; default 0 */
    char *push_body_placeholder; /* last-message-body otherwise; default "New message" */
    int push_ack_delay;          /* seconds unacked before a live session is pushed; default 30 */
    int push_max_hibernation;    /* seconds a push session stays hibernated; default 72h, 0 off */
    int push_wake_before_expiry; /* seconds before a hibernated session expires to publish; 0 off */
    int push_on_start;           /* bool: publish at start to sessions alive at shutdown; 0 */
};

/**
 * Fill cfg with the documented defaults (domain "localhost" ...). Always
 * succeeds; the struct must later be released with tern_config_free().
 */
void tern_config_defaults(struct tern_config *cfg);

/**
 * Load and validate a YAML file on top of the defaults. On failure returns a
 * negative tern_err and writes into err (size errlen) one message of the form
 * "FILE:LINE: key 'c2s.port': expected an integer from 0 to 65535, got 'abc'".
 * Unknown keys, wrong types, out-of-range values, missing values and YAML
 * syntax errors are all failures. On failure cfg holds defaults only.
 * cfg must be zeroed or hold a configuration already (its strings are freed
 * before it is filled).
 */
int tern_config_load(struct tern_config *cfg, const char *path, char *err, size_t errlen);

/** Same as tern_config_load() but from a string (name is used in messages). */
int tern_config_load_string(struct tern_config *cfg, const char *name, const char *yaml, char *err,
                            size_t errlen);

/** Release every string the struct owns; the struct may be reused after defaults. */
void tern_config_free(struct tern_config *cfg);

#endif
