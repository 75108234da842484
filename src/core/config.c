/*
 * ternd configuration loader. The file is read with libyaml's event API and
 * every key is checked against one static schema table (one row per key: path,
 * type, range, offset into struct tern_config), so adding a key means adding
 * a row, a field and a line in docs/configuration.md. One row, 'components',
 * is a mapping whose keys are data (component domain -> secret) rather than
 * schema; secrets_value() reads it into arrays.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define KIB 1024LL
#define MIB (1024LL * 1024)
#define DAY (24LL * 3600)

/* A configuration file larger than this is surely the wrong file. */
#define MAX_FILE_SIZE (1024 * 1024)
/* RFC 7622 §3.2: a domainpart is at most 1023 bytes. */
#define MAX_DOMAIN_LEN 1023
/* Longest path accepted (PATH_MAX on Linux, including the NUL). */
#define MAX_PATH_LEN 4095
/* Bytes of an offending value or key quoted back in a message. */
#define SHOW_MAX 40

enum key_type {
    KEY_SECTION,   /* a mapping of further keys */
    KEY_PATH,      /* a non-empty file or directory path */
    KEY_DOMAIN,    /* DNS name or IP literal, lower-cased */
    KEY_ADDRESS,   /* IPv4 or IPv6 literal to bind */
    KEY_INT,       /* decimal integer in [min, max] */
    KEY_BOOL,      /* true/false, yes/no, on/off */
    KEY_SIZE,      /* bytes, with optional B/KiB/MiB suffix, in [min, max] */
    KEY_DURATION,  /* seconds, with optional s/m/h/d suffix, in [min, max] */
    KEY_LOG_LEVEL, /* debug, info, warn, error */
    KEY_BACKEND,   /* storage backend name: only "sqlite" */
    KEY_SECRETS,   /* a mapping whose keys are data: component domain -> secret */
    KEY_TEXT,      /* push: free text of 1 to max bytes (no NUL) */
};

/** One key the file may contain. */
struct key_row {
    const char *path;   /* dotted path; the part before the dot names the section */
    enum key_type type; /* how the scalar is parsed and stored */
    long long min;      /* inclusive lower bound (KEY_INT, KEY_SIZE, KEY_DURATION) */
    long long max;      /* inclusive upper bound (same) */
    size_t offset;      /* of the field in struct tern_config; 0 for sections */
};

#define OFF(field) offsetof(struct tern_config, field)

static const struct key_row schema[] = {
    {"domain", KEY_DOMAIN, 0, 0, OFF(domain)},
    {"data_dir", KEY_PATH, 0, 0, OFF(data_dir)},
    {"log", KEY_SECTION, 0, 0, 0},
    {"log.level", KEY_LOG_LEVEL, 0, 0, OFF(log_level)},
    {"tls", KEY_SECTION, 0, 0, 0},
    {"tls.certificate", KEY_PATH, 0, 0, OFF(tls_cert)},
    {"tls.key", KEY_PATH, 0, 0, OFF(tls_key)},
    {"c2s", KEY_SECTION, 0, 0, 0},
    {"c2s.address", KEY_ADDRESS, 0, 0, OFF(c2s.address)},
    {"c2s.port", KEY_INT, 0, 65535, OFF(c2s.port)},
    {"c2s.starttls_required", KEY_BOOL, 0, 0, OFF(starttls_required)},
    {"c2s_tls", KEY_SECTION, 0, 0, 0},
    {"c2s_tls.address", KEY_ADDRESS, 0, 0, OFF(c2s_tls.address)},
    {"c2s_tls.port", KEY_INT, 0, 65535, OFF(c2s_tls.port)},
    {"storage", KEY_SECTION, 0, 0, 0},
    {"storage.backend", KEY_BACKEND, 0, 0, OFF(store_backend)},
    {"storage.path", KEY_PATH, 0, 0, OFF(store_path)},
    {"auth", KEY_SECTION, 0, 0, 0},
    {"auth.scram_iterations", KEY_INT, 4096, 10000000, OFF(scram_iterations)},
    {"auth.allow_plain", KEY_BOOL, 0, 0, OFF(allow_plain)},
    {"auth.max_failures", KEY_INT, 1, 1000000, OFF(auth_max_failures)},
    {"auth.failure_window", KEY_DURATION, 1, DAY, OFF(auth_failure_window)},
    {"auth.ban_time", KEY_DURATION, 1, 30 * DAY, OFF(auth_ban_time)},
    {"limits", KEY_SECTION, 0, 0, 0},
    {"limits.max_stanza_size", KEY_SIZE, 4 * KIB, 64 * MIB, OFF(max_stanza_size)},
    {"limits.max_preauth_stanza_size", KEY_SIZE, 1 * KIB, 64 * MIB, OFF(max_preauth_stanza_size)},
    {"limits.max_depth", KEY_INT, 4, 1000, OFF(max_depth)},
    {"limits.preauth_timeout", KEY_DURATION, 1, 3600, OFF(preauth_timeout)},
    {"limits.max_connections_per_ip", KEY_INT, 1, 1000000, OFF(max_connections_per_ip)},
    {"limits.max_connections", KEY_INT, 1, 10000000, OFF(max_connections)},
    {"offline", KEY_SECTION, 0, 0, 0},
    {"offline.max_messages", KEY_INT, 0, 1000000, OFF(offline_max_messages)},
    {"sm", KEY_SECTION, 0, 0, 0},
    {"sm.enabled", KEY_BOOL, 0, 0, OFF(sm_enabled)},
    {"sm.resume_timeout", KEY_DURATION, 1, DAY, OFF(sm_resume_timeout)},
    {"sm.max_resume_timeout", KEY_DURATION, 1, 7 * DAY, OFF(sm_max_resume_timeout)},
    {"sm.max_queue", KEY_INT, 1, 100000, OFF(sm_max_queue)},
    {"sm.ack_timeout", KEY_DURATION, 1, 3600, OFF(sm_ack_timeout)},
    {"sm.request_every", KEY_INT, 1, 10000, OFF(sm_request_every)},
    {"sm.request_interval", KEY_DURATION, 1, 3600, OFF(sm_request_interval)},
    {"csi", KEY_SECTION, 0, 0, 0},
    {"csi.enabled", KEY_BOOL, 0, 0, OFF(csi_enabled)},
    {"csi.max_buffer", KEY_INT, 1, 10000, OFF(csi_max_buffer)},
    {"component", KEY_SECTION, 0, 0, 0},
    {"component.address", KEY_ADDRESS, 0, 0, OFF(component.address)},
    {"component.port", KEY_INT, 0, 65535, OFF(component.port)},
    {"components", KEY_SECRETS, 0, 0, 0},
    /* push: XEP-0357 notifications (src/mod/push.c) */
    {"push", KEY_SECTION, 0, 0, 0},
    {"push.max_devices", KEY_INT, 1, 100, OFF(push_max_devices)},
    {"push.timeout", KEY_DURATION, 1, 3600, OFF(push_timeout)},
    {"push.max_errors", KEY_INT, 1, 1000, OFF(push_max_errors)},
    {"push.max_queue", KEY_INT, 1, 1000000, OFF(push_max_queue)},
    {"push.include_sender", KEY_BOOL, 0, 0, OFF(push_include_sender)},
    {"push.include_body", KEY_BOOL, 0, 0, OFF(push_include_body)},
    {"push.body_placeholder", KEY_TEXT, 1, 256, OFF(push_body_placeholder)},
    {"push.ack_delay", KEY_DURATION, 1, 3600, OFF(push_ack_delay)},
    {"push.max_hibernation", KEY_DURATION, 0, 7 * DAY, OFF(push_max_hibernation)},
    {"push.wake_before_expiry", KEY_DURATION, 0, DAY, OFF(push_wake_before_expiry)},
    {"push.on_start", KEY_BOOL, 0, 0, OFF(push_on_start)},
};

#define NKEYS (sizeof schema / sizeof schema[0])

/** State of one load. */
struct loader {
    yaml_parser_t parser;    /* libyaml event parser over text */
    struct tern_config *cfg; /* being filled; holds defaults at the start */
    const char *name;        /* file name used in messages */
    const char *text;        /* the whole input, to place reader errors on a line */
    size_t len;              /* bytes in text */
    size_t line[NKEYS];      /* 1-based line each schema key was given on; 0 = not given */
    size_t *component_line;  /* line of each entry of cfg->component_domains */
    char *err;               /* caller's message buffer (NULL if errlen is 0) */
    size_t errlen;           /* its size */
};

void tern_config_defaults(struct tern_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->domain = tern_strdup("localhost");
    cfg->data_dir = tern_strdup("var");
    cfg->log_level = TERN_LOG_INFO;
    cfg->c2s.address = tern_strdup("127.0.0.1");
    cfg->c2s.port = 5222;
    cfg->c2s_tls.address = tern_strdup("127.0.0.1");
    cfg->c2s_tls.port = 5223;
    cfg->starttls_required = 1;
    cfg->store_backend = tern_strdup("sqlite");
    cfg->store_path = tern_strdup("var/tern.db");
    cfg->scram_iterations = 4096;
    cfg->allow_plain = 1;
    cfg->auth_max_failures = 5;
    cfg->auth_failure_window = 30;
    cfg->auth_ban_time = 300;
    cfg->max_stanza_size = 256 * 1024;
    cfg->max_preauth_stanza_size = 8 * 1024;
    cfg->max_depth = 32;
    cfg->preauth_timeout = 60;
    cfg->max_connections_per_ip = 100;
    cfg->max_connections = 100000;
    cfg->offline_max_messages = 1000;
    cfg->sm_enabled = 1;
    cfg->sm_resume_timeout = 300;
    cfg->sm_max_resume_timeout = 3600;
    cfg->sm_max_queue = 500;
    cfg->sm_ack_timeout = 60;
    cfg->sm_request_every = 5;
    cfg->sm_request_interval = 30;
    cfg->csi_enabled = 1;
    cfg->csi_max_buffer = 100;
    cfg->component.address = tern_strdup("127.0.0.1");
    cfg->component.port = 5347;
    /* push */
    cfg->push_max_devices = 5;
    cfg->push_timeout = 30;
    cfg->push_max_errors = 16;
    cfg->push_max_queue = 10000;
    cfg->push_include_sender = 0;
    cfg->push_include_body = 0;
    cfg->push_body_placeholder = tern_strdup("New message");
    cfg->push_ack_delay = 30;
    cfg->push_max_hibernation = 72 * 3600;
    cfg->push_wake_before_expiry = 0;
    cfg->push_on_start = 0;
}

void tern_config_free(struct tern_config *cfg) {
    free(cfg->path);
    free(cfg->domain);
    free(cfg->data_dir);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->c2s.address);
    free(cfg->c2s_tls.address);
    free(cfg->store_backend);
    free(cfg->store_path);
    free(cfg->component.address);
    for (size_t i = 0; i < cfg->ncomponents; i++) {
        free(cfg->component_domains[i]);
        tern_memzero(cfg->component_secrets[i], strlen(cfg->component_secrets[i]));
        free(cfg->component_secrets[i]);
    }
    free(cfg->component_domains);
    free(cfg->component_secrets);
    free(cfg->push_body_placeholder); /* push */
    memset(cfg, 0, sizeof *cfg);
}

/* ---- messages ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int report(struct loader *ld, size_t line,
                                                        const char *fmt, ...) {
    if (ld->errlen == 0)
        return TERN_E_INVAL;
    int n = snprintf(ld->err, ld->errlen, "%s:%zu: ", ld->name, line);
    if (n >= 0 && (size_t)n < ld->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return TERN_E_INVAL;
}

/*
 * Copy untrusted text into out for quoting in a message: at most SHOW_MAX
 * bytes (cut on a UTF-8 boundary, then "..."), control bytes as '?'.
 */
static void show(char *out, size_t outlen, const char *s, size_t len) {
    size_t n = len;
    int cut = 0;
    if (n > SHOW_MAX) {
        n = SHOW_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = 1;
    }
    if (n + 4 > outlen)
        n = outlen > 4 ? outlen - 4 : 0;
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    if (cut && outlen >= n + 4) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* Plain empty, "~" and "null" are YAML's null: the key was given no value. */
static int is_null(const yaml_event_t *ev) {
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    return len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* What the file gave, for "got ...": nothing, 'text', a mapping ... */
static void describe_got(const yaml_event_t *ev, char *out, size_t outlen) {
    char shown[SHOW_MAX + 4];
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (is_null(ev)) {
            snprintf(out, outlen, "nothing");
        } else {
            show(shown, sizeof shown, (const char *)ev->data.scalar.value, ev->data.scalar.length);
            snprintf(out, outlen, "'%s'", shown);
        }
        break;
    case YAML_MAPPING_START_EVENT: snprintf(out, outlen, "a mapping"); break;
    case YAML_SEQUENCE_START_EVENT: snprintf(out, outlen, "a sequence"); break;
    case YAML_ALIAS_EVENT: snprintf(out, outlen, "an alias (aliases are not supported)"); break;
    default: snprintf(out, outlen, "something else"); break;
    }
}

/* A byte count in its largest exact unit: 4096 -> "4KiB". */
static void format_size(char *out, size_t outlen, long long n) {
    if (n >= MIB && n % MIB == 0)
        snprintf(out, outlen, "%lldMiB", n / MIB);
    else if (n >= KIB && n % KIB == 0)
        snprintf(out, outlen, "%lldKiB", n / KIB);
    else
        snprintf(out, outlen, "%lld", n);
}

/* Seconds in their largest exact unit: 3600 -> "1h". */
static void format_duration(char *out, size_t outlen, long long n) {
    if (n >= DAY && n % DAY == 0)
        snprintf(out, outlen, "%lldd", n / DAY);
    else if (n >= 3600 && n % 3600 == 0)
        snprintf(out, outlen, "%lldh", n / 3600);
    else if (n >= 60 && n % 60 == 0)
        snprintf(out, outlen, "%lldm", n / 60);
    else
        snprintf(out, outlen, "%llds", n);
}

/* What a key accepts, for "expected ...". */
static void describe_expected(const struct key_row *row, char *out, size_t outlen) {
    char lo[32], hi[32];
    switch (row->type) {
    case KEY_SECTION: snprintf(out, outlen, "a mapping"); break;
    case KEY_PATH: snprintf(out, outlen, "a file or directory path"); break;
    case KEY_DOMAIN:
        snprintf(out, outlen, "a domain name or IP address of at most %d bytes", MAX_DOMAIN_LEN);
        break;
    case KEY_ADDRESS:
        snprintf(out, outlen,
                 "an IPv4 or IPv6 address such as 127.0.0.1, 0.0.0.0 or \"::\" (in quotes)");
        break;
    case KEY_INT: snprintf(out, outlen, "an integer from %lld to %lld", row->min, row->max); break;
    case KEY_BOOL: snprintf(out, outlen, "true or false (or yes/no, on/off)"); break;
    case KEY_SIZE:
        format_size(lo, sizeof lo, row->min);
        format_size(hi, sizeof hi, row->max);
        snprintf(out, outlen, "a size from %s to %s such as 8192, 8KiB or 1MiB", lo, hi);
        break;
    case KEY_DURATION:
        format_duration(lo, sizeof lo, row->min);
        format_duration(hi, sizeof hi, row->max);
        snprintf(out, outlen, "a duration from %s to %s such as 30, 30s, 5m, 2h or 1d", lo, hi);
        break;
    case KEY_LOG_LEVEL: snprintf(out, outlen, "one of debug, info, warn, error"); break;
    case KEY_BACKEND: snprintf(out, outlen, "'sqlite' (the only backend for now)"); break;
    case KEY_SECRETS:
        snprintf(out, outlen, "a mapping of component domains to their secrets");
        break;
    case KEY_TEXT: /* push */
        snprintf(out, outlen, "text of %lld to %lld bytes", row->min, row->max);
        break;
    }
}

static int syntax_error(struct loader *ld) {
    yaml_parser_t *p = &ld->parser;
    size_t line;
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors (bad UTF-8, control bytes) carry a byte offset, not a mark. */
        size_t end = p->problem_offset < ld->len ? p->problem_offset : ld->len;
        line = 1;
        for (size_t i = 0; i < end; i++)
            line += ld->text[i] == '\n';
    } else {
        line = p->problem_mark.line + 1;
    }
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->context)
        return report(ld, line, "YAML syntax error: %s (%s)", problem, p->context);
    return report(ld, line, "YAML syntax error: %s", problem);
}

static int next_event(struct loader *ld, yaml_event_t *ev) {
    if (!yaml_parser_parse(&ld->parser, ev))
        return syntax_error(ld);
    return 0;
}

/* ---- scalar parsing ---------------------------------------------------- */

/* ASCII case-insensitive comparison of s[0..len) with a lower-case word. */
static int word_is(const char *s, size_t len, const char *word) {
    if (strlen(word) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

/*
 * Leading decimal digits of s (no sign, no 0x, no underscores): the value in
 * *out and the count in *used. Fails on no digits or a value past 2^62.
 */
static int parse_digits(const char *s, size_t len, long long *out, size_t *used) {
    long long v = 0;
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (v > (1LL << 62) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0)
        return -1;
    *out = v;
    *used = i;
    return 0;
}

static int parse_int(const char *s, size_t len, long long *out) {
    int neg = len > 0 && s[0] == '-';
    size_t used;
    if (parse_digits(s + neg, len - (size_t)neg, out, &used) || used != len - (size_t)neg)
        return -1;
    if (neg)
        *out = -*out;
    return 0;
}

/* A number followed by an optional unit from units[] (with multipliers mult[]). */
static int parse_with_unit(const char *s, size_t len, const char *const *units,
                           const long long *mult, long long *out) {
    long long v;
    size_t used;
    if (parse_digits(s, len, &v, &used))
        return -1;
    s += used;
    len -= used;
    while (len > 0 && *s == ' ') {
        s++;
        len--;
    }
    if (len == 0) {
        *out = v;
        return 0;
    }
    for (size_t i = 0; units[i]; i++) {
        if (strlen(units[i]) == len && memcmp(units[i], s, len) == 0) {
            if (v > (1LL << 62) / mult[i])
                return -1;
            *out = v * mult[i];
            return 0;
        }
    }
    return -1;
}

static int parse_size(const char *s, size_t len, long long *out) {
    /* Binary units only: "KB" is ambiguous (1000 or 1024), so it is refused. */
    static const char *const units[] = {"B", "KiB", "MiB", NULL};
    static const long long mult[] = {1, KIB, MIB};
    return parse_with_unit(s, len, units, mult, out);
}

static int parse_duration(const char *s, size_t len, long long *out) {
    static const char *const units[] = {"s", "m", "h", "d", NULL};
    static const long long mult[] = {1, 60, 3600, DAY};
    return parse_with_unit(s, len, units, mult, out);
}

static int parse_bool(const char *s, size_t len, int *out) {
    if (word_is(s, len, "true") || word_is(s, len, "yes") || word_is(s, len, "on")) {
        *out = 1;
        return 0;
    }
    if (word_is(s, len, "false") || word_is(s, len, "no") || word_is(s, len, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int is_ip_literal(const char *s, size_t len, int family) {
    char buf[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(family, buf, bin) == 1;
}

/*
 * A lower-case domain: LDH labels of 1-63 bytes, no leading or trailing
 * hyphen, joined by single dots; an IPv4 literal; or an IPv6 literal in
 * brackets as RFC 7622 §3.2 writes it in a JID.
 */
static int domain_ok(const char *d, size_t len) {
    if (len == 0 || len > MAX_DOMAIN_LEN)
        return 0;
    if (d[0] == '[')
        return len > 2 && d[len - 1] == ']' && is_ip_literal(d + 1, len - 2, AF_INET6);
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        int ldh = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ldh || (c == '-' && label == 0) || ++label > 63)
            return 0;
    }
    if (label == 0 || d[len - 1] == '-')
        return 0;
    /* A name ending in an all-digit label can only be an IPv4 address ("999.1.1.1" is not). */
    size_t i = len;
    while (i > 0 && d[i - 1] >= '0' && d[i - 1] <= '9')
        i--;
    if (i == 0 || d[i - 1] == '.')
        return is_ip_literal(d, len, AF_INET);
    return 1;
}

/* s[0..len) lower-cased if it is a valid domain (domain_ok), else NULL; caller frees. */
static char *lower_domain(const char *s, size_t len) {
    if (memchr(s, '\0', len))
        return NULL;
    char *lower = tern_strndup(s, len);
    for (size_t i = 0; i < len; i++)
        if (lower[i] >= 'A' && lower[i] <= 'Z')
            lower[i] = (char)(lower[i] - 'A' + 'a');
    if (!domain_ok(lower, len)) {
        free(lower);
        return NULL;
    }
    return lower;
}

static void replace_string(char **field, const char *s) {
    free(*field);
    *field = tern_strdup(s);
}

/* Parse the scalar s into the field of row; -1 if it does not fit the row. */
static int convert(struct tern_config *cfg, const struct key_row *row, const char *s, size_t len) {
    void *field = (char *)cfg + row->offset;
    long long n;
    int b;
    if (memchr(s, '\0', len))
        return -1; /* a "\0" escape; no key can use it */
    switch (row->type) {
    case KEY_SECTION: return -1;
    case KEY_PATH:
        if (len == 0 || len > MAX_PATH_LEN)
            return -1;
        replace_string(field, s);
        return 0;
    case KEY_DOMAIN: {
        char *lower = lower_domain(s, len);
        if (!lower)
            return -1;
        free(*(char **)field);
        *(char **)field = lower;
        return 0;
    }
    case KEY_ADDRESS:
        if (!is_ip_literal(s, len, AF_INET) && !is_ip_literal(s, len, AF_INET6))
            return -1;
        replace_string(field, s);
        return 0;
    case KEY_INT:
        if (parse_int(s, len, &n) || n < row->min || n > row->max)
            return -1;
        *(int *)field = (int)n;
        return 0;
    case KEY_BOOL:
        if (parse_bool(s, len, &b))
            return -1;
        *(int *)field = b;
        return 0;
    case KEY_SIZE:
        if (parse_size(s, len, &n) || n < row->min || n > row->max)
            return -1;
        *(size_t *)field = (size_t)n;
        return 0;
    case KEY_DURATION:
        if (parse_duration(s, len, &n) || n < row->min || n > row->max)
            return -1;
        *(int *)field = (int)n;
        return 0;
    case KEY_LOG_LEVEL:
        b = tern_log_level_parse(s);
        if (b < 0)
            return -1;
        *(int *)field = b;
        return 0;
    case KEY_BACKEND:
        if (strcmp(s, "sqlite") != 0)
            return -1;
        replace_string(field, s);
        return 0;
    case KEY_SECRETS: return -1; /* a mapping, read by secrets_value() */
    case KEY_TEXT:               /* push */
        if (len < (size_t)row->min || len > (size_t)row->max)
            return -1;
        replace_string(field, s);
        return 0;
    }
    return -1;
}

/* ---- structure --------------------------------------------------------- */

/* Is row a direct child of section (-1: the top level)? Its last name in *leaf. */
static int in_section(const struct key_row *row, int section, const char **leaf) {
    const char *dot = strchr(row->path, '.');
    if (section < 0) {
        *leaf = row->path;
        return dot == NULL;
    }
    const char *sec = schema[section].path;
    size_t n = strlen(sec);
    if (!dot || (size_t)(dot - row->path) != n || memcmp(row->path, sec, n) != 0)
        return 0;
    *leaf = dot + 1;
    return 1;
}

static int find_key(int section, const char *key, size_t len) {
    for (size_t i = 0; i < NKEYS; i++) {
        const char *leaf;
        if (in_section(&schema[i], section, &leaf) && strlen(leaf) == len &&
            memcmp(leaf, key, len) == 0)
            return (int)i;
    }
    return -1;
}

static int key_index(const char *path) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(schema[i].path, path) == 0)
            return (int)i;
    return -1;
}

static int unknown_key(struct loader *ld, int section, size_t line, const yaml_event_t *key) {
    char shown[SHOW_MAX + 4];
    struct tern_buf known;
    tern_buf_init(&known, 1024);
    for (size_t i = 0; i < NKEYS; i++) {
        const char *leaf;
        if (in_section(&schema[i], section, &leaf))
            tern_buf_printf(&known, "%s%s", known.len ? ", " : "", leaf);
    }
    show(shown, sizeof shown, (const char *)key->data.scalar.value, key->data.scalar.length);
    int rc;
    if (section < 0)
        rc = report(ld, line, "unknown key '%s' (known keys: %s)", shown, known.data);
    else
        rc = report(ld, line, "unknown key '%s.%s' (known keys in '%s': %s)", schema[section].path,
                    shown, schema[section].path, known.data);
    tern_buf_free(&known);
    return rc;
}

static int parse_mapping(struct loader *ld, int section);
static int secrets_value(struct loader *ld, int idx, size_t line, const yaml_event_t *val);

/* The value of a section key: a mapping of its keys, or nothing (all defaults). */
static int section_value(struct loader *ld, int idx, size_t line, const yaml_event_t *val) {
    char got[SHOW_MAX + 48];
    if (val->type == YAML_MAPPING_START_EVENT)
        return parse_mapping(ld, idx);
    if (is_null(val))
        return 0;
    if (val->type == YAML_SCALAR_EVENT)
        snprintf(got, sizeof got, "a scalar");
    else
        describe_got(val, got, sizeof got);
    return report(ld, line, "key '%s': expected a mapping, got %s", schema[idx].path, got);
}

/* One entry of 'components' (key event k, value event v), appended to cfg. */
static int secret_entry(struct loader *ld, const yaml_event_t *k, const yaml_event_t *v) {
    struct tern_config *cfg = ld->cfg;
    char shown[SHOW_MAX + 4], got[SHOW_MAX + 48];
    size_t line = k->start_mark.line + 1;
    if (k->type != YAML_SCALAR_EVENT || is_null(k)) {
        describe_got(k, got, sizeof got);
        return report(ld, line, "key 'components': expected a component domain as a key, got %s",
                      got);
    }
    const char *ks = (const char *)k->data.scalar.value;
    size_t klen = k->data.scalar.length;
    char *domain = lower_domain(ks, klen);
    if (!domain) {
        show(shown, sizeof shown, ks, klen);
        return report(ld, line,
                      "key 'components.%s': a component's name must be a domain name or IP "
                      "address of at most %d bytes",
                      shown, MAX_DOMAIN_LEN);
    }
    show(shown, sizeof shown, domain, klen);
    for (size_t i = 0; i < cfg->ncomponents; i++) {
        if (strcmp(cfg->component_domains[i], domain) == 0) {
            free(domain);
            return report(ld, line, "key 'components.%s' given twice (first on line %zu)", shown,
                          ld->component_line[i]);
        }
    }
    /* A secret is never quoted back: only what kind of wrong value it was. */
    int scalar = v->type == YAML_SCALAR_EVENT;
    const char *vs = scalar ? (const char *)v->data.scalar.value : NULL;
    size_t vlen = scalar ? v->data.scalar.length : 0;
    if (!scalar || is_null(v) || vlen == 0 || memchr(vs, '\0', vlen)) {
        if (scalar && !is_null(v))
            snprintf(got, sizeof got, vlen ? "a string containing a NUL character" : "''");
        else
            describe_got(v, got, sizeof got);
        free(domain);
        return report(ld, line, "key 'components.%s': expected a non-empty secret, got %s", shown,
                      got);
    }
    size_t n = cfg->ncomponents + 1;
    cfg->component_domains = tern_realloc(cfg->component_domains, n * sizeof(char *));
    cfg->component_secrets = tern_realloc(cfg->component_secrets, n * sizeof(char *));
    ld->component_line = tern_realloc(ld->component_line, n * sizeof(size_t));
    cfg->component_domains[n - 1] = domain;
    cfg->component_secrets[n - 1] = tern_strndup(vs, vlen);
    ld->component_line[n - 1] = line;
    cfg->ncomponents = n;
    return 0;
}

/*
 * The value of 'components': a mapping whose keys are data, not schema
 * (component domain -> shared secret, XEP-0114), or nothing (none). That a
 * component does not take the server's own domain is checked in
 * check_across(), since 'domain' may come later in the file.
 */
static int secrets_value(struct loader *ld, int idx, size_t line, const yaml_event_t *val) {
    yaml_event_t k, v;
    int rc;
    if (is_null(val))
        return 0;
    if (val->type != YAML_MAPPING_START_EVENT) {
        char want[160], got[SHOW_MAX + 48];
        describe_expected(&schema[idx], want, sizeof want);
        if (val->type == YAML_SCALAR_EVENT)
            snprintf(got, sizeof got, "a scalar");
        else
            describe_got(val, got, sizeof got);
        return report(ld, line, "key '%s': expected %s, got %s", schema[idx].path, want, got);
    }
    memset(&k, 0, sizeof k);
    memset(&v, 0, sizeof v);
    for (;;) {
        rc = next_event(ld, &k);
        if (rc || k.type == YAML_MAPPING_END_EVENT)
            break;
        rc = next_event(ld, &v);
        if (rc)
            break;
        rc = secret_entry(ld, &k, &v);
        if (rc)
            break;
        yaml_event_delete(&k);
        yaml_event_delete(&v);
    }
    yaml_event_delete(&k);
    yaml_event_delete(&v);
    return rc;
}

static int scalar_value(struct loader *ld, int idx, size_t line, const yaml_event_t *val) {
    const struct key_row *row = &schema[idx];
    if (val->type == YAML_SCALAR_EVENT && !is_null(val) &&
        convert(ld->cfg, row, (const char *)val->data.scalar.value, val->data.scalar.length) == 0)
        return 0;
    char want[160], got[SHOW_MAX + 48];
    describe_expected(row, want, sizeof want);
    describe_got(val, got, sizeof got);
    return report(ld, line, "key '%s': expected %s, got %s", row->path, want, got);
}

/*
 * The keys of a mapping whose MAPPING-START has been consumed, up to and
 * including its MAPPING-END. Sections recurse once; the schema is two deep.
 */
static int parse_mapping(struct loader *ld, int section) {
    yaml_event_t key, val;
    int rc;
    memset(&key, 0, sizeof key);
    memset(&val, 0, sizeof val);
    for (;;) {
        rc = next_event(ld, &key);
        if (rc)
            goto fail;
        if (key.type == YAML_MAPPING_END_EVENT)
            break;
        size_t line = key.start_mark.line + 1;
        if (key.type != YAML_SCALAR_EVENT || is_null(&key)) {
            char got[SHOW_MAX + 48];
            describe_got(&key, got, sizeof got);
            rc = report(ld, line, "expected a key name, got %s", got);
            goto fail;
        }
        int idx = find_key(section, (const char *)key.data.scalar.value, key.data.scalar.length);
        if (idx < 0) {
            rc = unknown_key(ld, section, line, &key);
            goto fail;
        }
        if (ld->line[idx]) {
            rc = report(ld, line, "key '%s' given twice (first on line %zu)", schema[idx].path,
                        ld->line[idx]);
            goto fail;
        }
        ld->line[idx] = line;
        rc = next_event(ld, &val);
        if (rc)
            goto fail;
        /* Errors about a value name the key's line: an empty value's mark is on the next. */
        if (schema[idx].type == KEY_SECTION)
            rc = section_value(ld, idx, line, &val);
        else if (schema[idx].type == KEY_SECRETS)
            rc = secrets_value(ld, idx, line, &val);
        else
            rc = scalar_value(ld, idx, line, &val);
        if (rc)
            goto fail;
        yaml_event_delete(&key);
        yaml_event_delete(&val);
    }
    rc = 0;
fail:
    yaml_event_delete(&key);
    yaml_event_delete(&val);
    return rc;
}

/* Stream: at most one document whose root is a mapping (or empty). */
static int parse_stream(struct loader *ld) {
    yaml_event_t ev;
    int rc;
    memset(&ev, 0, sizeof ev);
    rc = next_event(ld, &ev); /* STREAM-START */
    if (rc)
        goto fail;
    yaml_event_delete(&ev);
    rc = next_event(ld, &ev);
    if (rc || ev.type == YAML_STREAM_END_EVENT)
        goto fail; /* an empty file (or only comments): all defaults */
    yaml_event_delete(&ev);
    rc = next_event(ld, &ev); /* the root node, after DOCUMENT-START */
    if (rc)
        goto fail;
    if (ev.type == YAML_MAPPING_START_EVENT) {
        rc = parse_mapping(ld, -1);
    } else if (!is_null(&ev)) {
        char got[SHOW_MAX + 48];
        if (ev.type == YAML_SCALAR_EVENT)
            snprintf(got, sizeof got, "a scalar");
        else
            describe_got(&ev, got, sizeof got);
        rc = report(ld, ev.start_mark.line + 1, "the top level must be a mapping, got %s", got);
    }
    if (rc)
        goto fail;
    yaml_event_delete(&ev);
    rc = next_event(ld, &ev); /* DOCUMENT-END */
    if (rc)
        goto fail;
    yaml_event_delete(&ev);
    rc = next_event(ld, &ev);
    if (rc)
        goto fail;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = report(ld, ev.start_mark.line + 1, "only one YAML document is allowed");
fail:
    yaml_event_delete(&ev);
    return rc;
}

/* ---- rules across keys ------------------------------------------------- */

static int check_pair(struct loader *ld, const char *a, const char *b) {
    size_t la = ld->line[key_index(a)], lb = ld->line[key_index(b)];
    if (la && !lb)
        return report(ld, la, "key '%s': '%s' must be given too (both or neither)", a, b);
    if (lb && !la)
        return report(ld, lb, "key '%s': '%s' must be given too (both or neither)", b, a);
    return 0;
}

/* XEP-0114 components: not the server's own domain, and a port of their own. */
static int check_components(struct loader *ld) {
    struct tern_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->ncomponents; i++) {
        if (strcmp(cfg->component_domains[i], cfg->domain) == 0) {
            char shown[SHOW_MAX + 4];
            show(shown, sizeof shown, cfg->domain, strlen(cfg->domain));
            return report(ld, ld->component_line[i],
                          "key 'components.%s': a component cannot have the server's own domain",
                          shown);
        }
    }
    /* The listener opens only when components are configured (ternd.c). */
    if (cfg->ncomponents == 0 || cfg->component.port == 0)
        return 0;
    const struct tern_listen *others[] = {&cfg->c2s, &cfg->c2s_tls};
    const char *names[] = {"c2s", "c2s_tls"};
    for (size_t i = 0; i < 2; i++) {
        if (others[i]->port != cfg->component.port ||
            strcmp(others[i]->address, cfg->component.address) != 0)
            continue;
        size_t line = ld->line[key_index("component.port")];
        const char *key = "component.port";
        if (!line) {
            char other_key[32];
            snprintf(other_key, sizeof other_key, "%s.port", names[i]);
            line = ld->line[key_index(other_key)];
            return report(ld, line, "key '%s': %s and component cannot both listen on %s port %d",
                          other_key, names[i], cfg->component.address, cfg->component.port);
        }
        return report(ld, line, "key '%s': component and %s cannot both listen on %s port %d", key,
                      names[i], cfg->component.address, cfg->component.port);
    }
    return 0;
}

static int check_across(struct loader *ld) {
    struct tern_config *cfg = ld->cfg;
    int rc = check_pair(ld, "tls.certificate", "tls.key");
    if (rc)
        return rc;

    if (cfg->max_preauth_stanza_size > cfg->max_stanza_size) {
        char pre[32], max[32];
        format_size(pre, sizeof pre, (long long)cfg->max_preauth_stanza_size);
        format_size(max, sizeof max, (long long)cfg->max_stanza_size);
        size_t line = ld->line[key_index("limits.max_preauth_stanza_size")];
        if (line)
            return report(ld, line,
                          "key 'limits.max_preauth_stanza_size': must not exceed "
                          "limits.max_stanza_size (%s), got '%s'",
                          max, pre);
        line = ld->line[key_index("limits.max_stanza_size")];
        return report(ld, line,
                      "key 'limits.max_stanza_size': must be at least "
                      "limits.max_preauth_stanza_size (%s), got '%s'",
                      pre, max);
    }

    if (cfg->c2s.port != 0 && cfg->c2s.port == cfg->c2s_tls.port &&
        strcmp(cfg->c2s.address, cfg->c2s_tls.address) == 0) {
        size_t line = ld->line[key_index("c2s_tls.port")];
        const char *key = "c2s_tls.port";
        if (!line) {
            line = ld->line[key_index("c2s.port")];
            key = "c2s.port";
        }
        return report(ld, line, "key '%s': c2s and c2s_tls cannot both listen on %s port %d", key,
                      cfg->c2s.address, cfg->c2s.port);
    }
    return check_components(ld);
}

/* storage.path defaults to <data_dir>/tern.db, after data_dir is known. */
static void default_store_path(struct loader *ld) {
    struct tern_config *cfg = ld->cfg;
    if (ld->line[key_index("storage.path")])
        return;
    size_t n = strlen(cfg->data_dir);
    while (n > 1 && cfg->data_dir[n - 1] == '/')
        n--;
    const char *sep = cfg->data_dir[n - 1] == '/' ? "" : "/";
    size_t size = n + strlen(sep) + sizeof "tern.db";
    free(cfg->store_path);
    cfg->store_path = tern_malloc(size);
    snprintf(cfg->store_path, size, "%.*s%stern.db", (int)n, cfg->data_dir, sep);
}

/* ---- entry points ------------------------------------------------------ */

static void reset(struct tern_config *cfg) {
    tern_config_free(cfg);
    tern_config_defaults(cfg);
}

static int load_text(struct tern_config *cfg, const char *name, const char *text, size_t len,
                     char *err, size_t errlen) {
    struct loader ld;
    int rc;
    memset(&ld, 0, sizeof ld);
    ld.cfg = cfg;
    ld.name = name;
    ld.text = text;
    ld.len = len;
    ld.err = err;
    ld.errlen = err ? errlen : 0;
    reset(cfg);
    if (!yaml_parser_initialize(&ld.parser)) {
        /* libyaml fails here only when out of memory (STYLE.md §6: abort). */
        tern_error("config", "out of memory initialising the YAML parser");
        abort();
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    rc = parse_stream(&ld);
    if (rc == 0)
        rc = check_across(&ld);
    yaml_parser_delete(&ld.parser);
    free(ld.component_line);
    if (rc) {
        reset(cfg);
        return rc;
    }
    default_store_path(&ld);
    cfg->path = tern_strdup(name);
    return 0;
}

int tern_config_load_string(struct tern_config *cfg, const char *name, const char *yaml, char *err,
                            size_t errlen) {
    if (err && errlen)
        err[0] = '\0';
    return load_text(cfg, name, yaml, strlen(yaml), err, errlen);
}

int tern_config_load(struct tern_config *cfg, const char *path, char *err, size_t errlen) {
    struct tern_buf text;
    FILE *f = NULL;
    char chunk[4096];
    size_t n;
    int rc;

    if (err && errlen)
        err[0] = '\0';
    else
        errlen = 0;
    tern_buf_init(&text, MAX_FILE_SIZE);
    reset(cfg);
    f = fopen(path, "rb");
    if (!f) {
        if (errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        rc = TERN_E_IO;
        goto fail;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (tern_buf_add(&text, chunk, n) != 0) {
            if (errlen)
                snprintf(err, errlen, "%s: larger than %d bytes, not a configuration file", path,
                         MAX_FILE_SIZE);
            rc = TERN_E_LIMIT;
            goto fail;
        }
    }
    if (ferror(f)) {
        if (errlen)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        rc = TERN_E_IO;
        goto fail;
    }
    rc = load_text(cfg, path, text.data ? text.data : "", text.len, err, errlen);
fail:
    if (f)
        fclose(f);
    tern_buf_free(&text);
    return rc;
}
