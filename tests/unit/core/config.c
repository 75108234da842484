/* Unit tests for src/core/config.c: defaults, every key, every kind of error message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"

#define NAME "test.yaml"

/* Assert that cfg holds exactly the documented defaults. */
static void assert_defaults(const struct tern_config *c) {
    assert_string_equal(c->domain, "localhost");
    assert_string_equal(c->data_dir, "var");
    assert_int_equal(c->log_level, TERN_LOG_INFO);
    assert_null(c->tls_cert);
    assert_null(c->tls_key);
    assert_string_equal(c->c2s.address, "127.0.0.1");
    assert_int_equal(c->c2s.port, 5222);
    assert_string_equal(c->c2s_tls.address, "127.0.0.1");
    assert_int_equal(c->c2s_tls.port, 5223);
    assert_int_equal(c->starttls_required, 1);
    assert_string_equal(c->store_backend, "sqlite");
    assert_string_equal(c->store_path, "var/tern.db");
    assert_int_equal(c->scram_iterations, 4096);
    assert_int_equal(c->allow_plain, 1);
    assert_int_equal(c->auth_max_failures, 5);
    assert_int_equal(c->auth_failure_window, 30);
    assert_int_equal(c->auth_ban_time, 300);
    assert_int_equal(c->max_stanza_size, 262144);
    assert_int_equal(c->max_preauth_stanza_size, 8192);
    assert_int_equal(c->max_depth, 32);
    assert_int_equal(c->preauth_timeout, 60);
    assert_int_equal(c->max_connections_per_ip, 100);
    assert_int_equal(c->max_connections, 100000);
    assert_string_equal(c->component.address, "127.0.0.1");
    assert_int_equal(c->component.port, 5347);
    assert_int_equal(c->ncomponents, 0);
    assert_null(c->component_domains);
    assert_null(c->component_secrets);
}

/* Load yaml that must be valid; the caller frees *c. */
static void load_ok(struct tern_config *c, const char *yaml) {
    char err[512];
    memset(c, 0, sizeof *c);
    int rc = tern_config_load_string(c, NAME, yaml, err, sizeof err);
    if (rc != 0)
        fail_msg("unexpected error for <<%s>>: %s", yaml, err);
    assert_string_equal(err, "");
    assert_string_equal(c->path, NAME);
}

/* Load yaml that must fail with exactly this message; cfg must be left at defaults. */
static void expect_error(const char *yaml, const char *message) {
    struct tern_config c;
    char err[512];
    memset(&c, 0, sizeof c);
    int rc = tern_config_load_string(&c, NAME, yaml, err, sizeof err);
    assert_int_equal(rc, TERN_E_INVAL);
    assert_string_equal(err, message);
    assert_defaults(&c);
    assert_null(c.path);
    tern_config_free(&c);
}

/* Same, for messages whose tail comes from libyaml: prefix match only. */
static void expect_error_prefix(const char *yaml, const char *prefix) {
    struct tern_config c;
    char err[512];
    memset(&c, 0, sizeof c);
    int rc = tern_config_load_string(&c, NAME, yaml, err, sizeof err);
    assert_int_equal(rc, TERN_E_INVAL);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("message <<%s>> does not start with <<%s>>", err, prefix);
    assert_true(strlen(err) > strlen(prefix));
    assert_defaults(&c);
    tern_config_free(&c);
}

static void test_defaults(void **state) {
    struct tern_config c;
    tern_config_defaults(&c);
    assert_null(c.path);
    assert_defaults(&c);
    tern_config_free(&c);
    assert_null(c.domain);
    assert_null(c.store_path);
    /* Free twice is harmless: the struct is zeroed. */
    tern_config_free(&c);
}

static const char full_yaml[] = "# every key, none at its default\n"
                                "domain: Chat.Example.ORG\n"
                                "data_dir: /srv/tern\n"
                                "log:\n"
                                "  level: debug\n"
                                "tls:\n"
                                "  certificate: /etc/tern/cert.pem\n"
                                "  key: /etc/tern/key.pem\n"
                                "c2s:\n"
                                "  address: \"::\"\n"
                                "  port: 5322\n"
                                "  starttls_required: false\n"
                                "c2s_tls:\n"
                                "  address: 0.0.0.0\n"
                                "  port: 0\n"
                                "storage:\n"
                                "  backend: sqlite\n"
                                "  path: /var/lib/tern/db.sqlite\n"
                                "auth:\n"
                                "  scram_iterations: 10000\n"
                                "  allow_plain: no\n"
                                "  max_failures: 3\n"
                                "  failure_window: 1m\n"
                                "  ban_time: 2h\n"
                                "limits:\n"
                                "  max_stanza_size: 1MiB\n"
                                "  max_preauth_stanza_size: 4KiB\n"
                                "  max_depth: 64\n"
                                "  preauth_timeout: 20\n"
                                "  max_connections_per_ip: 10\n"
                                "  max_connections: 5000\n"
                                "component:\n"
                                "  address: '::1'\n"
                                "  port: 5348\n"
                                "components:\n"
                                "  Push.Example.ORG: s3cret\n"
                                "  \"muc.example.org\": \"two words\"\n";

static void test_full(void **state) {
    struct tern_config c;
    load_ok(&c, full_yaml);
    assert_string_equal(c.domain, "chat.example.org");
    assert_string_equal(c.data_dir, "/srv/tern");
    assert_int_equal(c.log_level, TERN_LOG_DEBUG);
    assert_string_equal(c.tls_cert, "/etc/tern/cert.pem");
    assert_string_equal(c.tls_key, "/etc/tern/key.pem");
    assert_string_equal(c.c2s.address, "::");
    assert_int_equal(c.c2s.port, 5322);
    assert_int_equal(c.starttls_required, 0);
    assert_string_equal(c.c2s_tls.address, "0.0.0.0");
    assert_int_equal(c.c2s_tls.port, 0);
    assert_string_equal(c.store_backend, "sqlite");
    assert_string_equal(c.store_path, "/var/lib/tern/db.sqlite");
    assert_int_equal(c.scram_iterations, 10000);
    assert_int_equal(c.allow_plain, 0);
    assert_int_equal(c.auth_max_failures, 3);
    assert_int_equal(c.auth_failure_window, 60);
    assert_int_equal(c.auth_ban_time, 7200);
    assert_int_equal(c.max_stanza_size, 1024 * 1024);
    assert_int_equal(c.max_preauth_stanza_size, 4096);
    assert_int_equal(c.max_depth, 64);
    assert_int_equal(c.preauth_timeout, 20);
    assert_int_equal(c.max_connections_per_ip, 10);
    assert_int_equal(c.max_connections, 5000);
    assert_string_equal(c.component.address, "::1");
    assert_int_equal(c.component.port, 5348);
    assert_int_equal(c.ncomponents, 2);
    assert_string_equal(c.component_domains[0], "push.example.org");
    assert_string_equal(c.component_secrets[0], "s3cret");
    assert_string_equal(c.component_domains[1], "muc.example.org");
    assert_string_equal(c.component_secrets[1], "two words");
    tern_config_free(&c);
}

static void test_flow_style(void **state) {
    struct tern_config c;
    load_ok(&c, "{c2s: {port: 1, address: '::1'}, log: {level: warn}}\n");
    assert_int_equal(c.c2s.port, 1);
    assert_string_equal(c.c2s.address, "::1");
    assert_int_equal(c.log_level, TERN_LOG_WARN);
    tern_config_free(&c);
}

static void test_empty(void **state) {
    static const char *const empties[] = {"",       "\n",         "# only a comment\n",
                                          "---\n",  "---\n...\n", "~\n",
                                          "log:\n", "tls: ~\n",   "log:\nc2s:\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        struct tern_config c;
        load_ok(&c, empties[i]);
        assert_defaults(&c);
        tern_config_free(&c);
    }
}

static void test_store_path_default(void **state) {
    struct tern_config c;
    load_ok(&c, "data_dir: /srv/tern\n");
    assert_string_equal(c.store_path, "/srv/tern/tern.db");
    tern_config_free(&c);
    load_ok(&c, "data_dir: /srv/tern//\n");
    assert_string_equal(c.store_path, "/srv/tern/tern.db");
    tern_config_free(&c);
    load_ok(&c, "data_dir: /\n");
    assert_string_equal(c.store_path, "/tern.db");
    tern_config_free(&c);
    /* Given explicitly, storage.path wins whatever data_dir says. */
    load_ok(&c, "storage:\n  path: x.db\ndata_dir: /srv\n");
    assert_string_equal(c.store_path, "x.db");
    tern_config_free(&c);
}

static void test_sizes(void **state) {
    static const struct {
        const char *text;
        size_t bytes;
    } ok[] = {
        {"8192", 8192},     {"8KiB", 8192},   {"8 KiB", 8192},
        {"1MiB", 1048576},  {"4096B", 4096},  {"64MiB", 67108864},
        {"'16KiB'", 16384}, {"65536", 65536}, {"0004096", 4096},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[128];
        struct tern_config c;
        snprintf(yaml, sizeof yaml,
                 "limits:\n  max_preauth_stanza_size: 1KiB\n  max_stanza_size: %s\n", ok[i].text);
        load_ok(&c, yaml);
        assert_int_equal(c.max_stanza_size, ok[i].bytes);
        tern_config_free(&c);
    }

    static const char *const bad[] = {"8KB",
                                      "1MB",
                                      "8k",
                                      "8kib",
                                      "1GiB",
                                      "KiB",
                                      "-8KiB",
                                      "8.5KiB",
                                      "0x1000",
                                      "1_000_000",
                                      "99999999999999999999999KiB",
                                      "65MiB",
                                      "4095",
                                      "1KiB",
                                      "8KiB8",
                                      "8 KiB "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[128], msg[256];
        snprintf(yaml, sizeof yaml, "limits:\n  max_stanza_size: '%s'\n", bad[i]);
        snprintf(msg, sizeof msg,
                 NAME ":2: key 'limits.max_stanza_size': expected a size from 4KiB to 64MiB such "
                      "as 8192, 8KiB or 1MiB, got '%s'",
                 bad[i]);
        expect_error(yaml, msg);
    }

    /* The preauth ceiling must fit under the stanza ceiling, whichever key moved. */
    expect_error("limits:\n  max_stanza_size: 64KiB\n  max_preauth_stanza_size: 128KiB\n",
                 NAME ":3: key 'limits.max_preauth_stanza_size': must not exceed "
                      "limits.max_stanza_size (64KiB), got '128KiB'");
    expect_error("limits:\n  max_stanza_size: 4KiB\n",
                 NAME ":2: key 'limits.max_stanza_size': must be at least "
                      "limits.max_preauth_stanza_size (8KiB), got '4KiB'");
    expect_error("limits:\n  max_preauth_stanza_size: 1000\n",
                 NAME ":2: key 'limits.max_preauth_stanza_size': expected a size from 1KiB to "
                      "64MiB such as 8192, 8KiB or 1MiB, got '1000'");
    struct tern_config c;
    load_ok(&c, "limits:\n  max_stanza_size: 4KiB\n  max_preauth_stanza_size: 4KiB\n");
    assert_int_equal(c.max_preauth_stanza_size, 4096);
    tern_config_free(&c);
}

static void test_durations(void **state) {
    static const struct {
        const char *text;
        int seconds;
    } ok[] = {
        {"30", 30},    {"30s", 30},      {"5m", 300}, {"2h", 7200},
        {"1d", 86400}, {"30d", 2592000}, {"1 m", 60},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[128];
        struct tern_config c;
        snprintf(yaml, sizeof yaml, "auth:\n  ban_time: %s\n", ok[i].text);
        load_ok(&c, yaml);
        assert_int_equal(c.auth_ban_time, ok[i].seconds);
        tern_config_free(&c);
    }

    static const char *const bad[] = {"0", "0s", "5x", "1w", "-1", "m", "1.5h", "31d", "5M"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[128], msg[256];
        snprintf(yaml, sizeof yaml, "auth:\n  ban_time: %s\n", bad[i]);
        snprintf(msg, sizeof msg,
                 NAME ":2: key 'auth.ban_time': expected a duration from 1s to 30d such as 30, "
                      "30s, 5m, 2h or 1d, got '%s'",
                 bad[i]);
        expect_error(yaml, msg);
    }
    expect_error("limits:\n  preauth_timeout: 2h\n",
                 NAME ":2: key 'limits.preauth_timeout': expected a duration from 1s to 1h such "
                      "as 30, 30s, 5m, 2h or 1d, got '2h'");
}

static void test_booleans(void **state) {
    static const struct {
        const char *text;
        int value;
    } ok[] = {
        {"true", 1}, {"false", 0}, {"yes", 1},   {"no", 0},    {"on", 1},
        {"off", 0},  {"True", 1},  {"FALSE", 0}, {"'yes'", 1}, {"Off", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[128];
        struct tern_config c;
        snprintf(yaml, sizeof yaml, "auth:\n  allow_plain: %s\n", ok[i].text);
        load_ok(&c, yaml);
        assert_int_equal(c.allow_plain, ok[i].value);
        tern_config_free(&c);
        snprintf(yaml, sizeof yaml, "c2s:\n  starttls_required: %s\n", ok[i].text);
        load_ok(&c, yaml);
        assert_int_equal(c.starttls_required, ok[i].value);
        tern_config_free(&c);
    }
    expect_error("auth:\n  allow_plain: maybe\n",
                 NAME ":2: key 'auth.allow_plain': expected true or false (or yes/no, on/off), "
                      "got 'maybe'");
    expect_error("auth:\n  allow_plain: 1\n",
                 NAME ":2: key 'auth.allow_plain': expected true or false (or yes/no, on/off), "
                      "got '1'");
}

static void test_integers(void **state) {
    struct tern_config c;
    load_ok(&c, "c2s:\n  port: 0\nc2s_tls:\n  port: 65535\n");
    assert_int_equal(c.c2s.port, 0);
    assert_int_equal(c.c2s_tls.port, 65535);
    tern_config_free(&c);

    expect_error("c2s:\n  port: abc\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got 'abc'");
    expect_error("c2s:\n  port: 65536\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got '65536'");
    expect_error("c2s:\n  port: -1\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got '-1'");
    expect_error("c2s:\n  port: 0x10\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got '0x10'");
    expect_error("c2s:\n  port: +5\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got '+5'");
    expect_error("c2s:\n  port: 52 22\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got '52 22'");
    expect_error("c2s:\n  port: 99999999999999999999999\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got "
                      "'99999999999999999999999'");
    expect_error("auth:\n  scram_iterations: 4095\n",
                 NAME ":2: key 'auth.scram_iterations': expected an integer from 4096 to 10000000, "
                      "got '4095'");
    expect_error("auth:\n  scram_iterations: 10000001\n",
                 NAME ":2: key 'auth.scram_iterations': expected an integer from 4096 to 10000000, "
                      "got '10000001'");
    expect_error("limits:\n  max_depth: 3\n",
                 NAME ":2: key 'limits.max_depth': expected an integer from 4 to 1000, got '3'");
    expect_error("limits:\n  max_depth: 1001\n",
                 NAME ":2: key 'limits.max_depth': expected an integer from 4 to 1000, got '1001'");
    expect_error("auth:\n  max_failures: 0\n", NAME
                 ":2: key 'auth.max_failures': expected an integer from 1 to 1000000, got '0'");
    expect_error("limits:\n  max_connections: 0\n",
                 NAME ":2: key 'limits.max_connections': expected an integer from 1 to 10000000, "
                      "got '0'");
    expect_error("limits:\n  max_connections_per_ip: 0\n", NAME
                 ":2: key 'limits.max_connections_per_ip': expected an integer from 1 to 1000000, "
                 "got '0'");

    load_ok(&c, "auth:\n  scram_iterations: 10000000\nlimits:\n  max_depth: 4\n");
    assert_int_equal(c.scram_iterations, 10000000);
    assert_int_equal(c.max_depth, 4);
    tern_config_free(&c);
}

static void test_missing_value(void **state) {
    expect_error("c2s:\n  port:\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got nothing");
    /* The empty value's own mark is on the next line; the message names the key's line. */
    expect_error("c2s:\n  port:\n  address: '::'\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got nothing");
    expect_error("domain: ~\n", NAME ":1: key 'domain': expected a domain name or IP address of "
                                     "at most 1023 bytes, got nothing");
    expect_error("data_dir: ''\n",
                 NAME ":1: key 'data_dir': expected a file or directory path, got ''");
    expect_error("log:\n  level:\n",
                 NAME ":2: key 'log.level': expected one of debug, info, warn, error, got nothing");
}

static void test_wrong_kind(void **state) {
    expect_error("log: debug\n", NAME ":1: key 'log': expected a mapping, got a scalar");
    expect_error("log:\n  - level\n", NAME ":1: key 'log': expected a mapping, got a sequence");
    expect_error("c2s:\n  port: [5222, 5223]\n",
                 NAME ":2: key 'c2s.port': expected an integer from 0 to 65535, got a sequence");
    expect_error("domain:\n  name: example.org\n",
                 NAME ":1: key 'domain': expected a domain name or IP address of at most 1023 "
                      "bytes, got a mapping");
    expect_error("hello\n", NAME ":1: the top level must be a mapping, got a scalar");
    expect_error("# comment\n- a\n- b\n",
                 NAME ":2: the top level must be a mapping, got a sequence");
    expect_error("c2s:\n  ? [a, b]\n  : 1\n", NAME ":2: expected a key name, got a sequence");
    expect_error("~: 1\n", NAME ":1: expected a key name, got nothing");
}

static void test_aliases(void **state) {
    expect_error("c2s: &l\n  port: 1\nc2s_tls: *l\n",
                 NAME ":3: key 'c2s_tls': expected a mapping, got an alias (aliases are not "
                      "supported)");
    expect_error("c2s:\n  port: &p 1\nc2s_tls:\n  port: *p\n",
                 NAME ":4: key 'c2s_tls.port': expected an integer from 0 to 65535, got an alias "
                      "(aliases are not supported)");
}

static void test_unknown_key(void **state) {
    expect_error("c2s:\n  prot: 5222\n",
                 NAME ":2: unknown key 'c2s.prot' (known keys in 'c2s': address, port, "
                      "starttls_required)");
    expect_error("domain: a.b\ncolour: red\n", NAME
                 ":2: unknown key 'colour' (known keys: domain, data_dir, log, tls, c2s, "
                 "c2s_tls, storage, auth, limits, offline, sm, csi, component, components, push)");
    expect_error("limits:\n  max_stanza: 1\n",
                 NAME ":2: unknown key 'limits.max_stanza' (known keys in 'limits': "
                      "max_stanza_size, max_preauth_stanza_size, max_depth, preauth_timeout, "
                      "max_connections_per_ip, max_connections)");
    /* A dotted key is not a path into a section, and keys are case-sensitive. */
    expect_error("c2s.port: 1\n", NAME ":1: unknown key 'c2s.port' (known keys: domain, data_dir, "
                                       "log, tls, c2s, c2s_tls, storage, auth, limits, "
                                       "offline, sm, csi, component, components, push)");
    expect_error(
        "Domain: a\n", NAME
        ":1: unknown key 'Domain' (known keys: domain, data_dir, log, "
        "tls, c2s, c2s_tls, storage, auth, limits, offline, sm, csi, component, components, push)");
    /* Control bytes in the key are not echoed raw; long keys are cut. */
    expect_error(
        "\"a\\tb\": 1\n", NAME
        ":1: unknown key 'a?b' (known keys: domain, data_dir, log, "
        "tls, c2s, c2s_tls, storage, auth, limits, offline, sm, csi, component, components, push)");
    expect_error("tls:\n  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: 1\n",
                 NAME ":2: unknown key 'tls.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' (known "
                      "keys in 'tls': certificate, key)");
}

static void test_duplicate_key(void **state) {
    expect_error("c2s:\n  port: 1\n  address: '::'\n  port: 2\n",
                 NAME ":4: key 'c2s.port' given twice (first on line 2)");
    expect_error("log:\n  level: info\ndomain: a\nlog:\n  level: debug\n",
                 NAME ":4: key 'log' given twice (first on line 1)");
    expect_error("domain: a\ndomain: a\n", NAME ":2: key 'domain' given twice (first on line 1)");
}

static void test_syntax_error(void **state) {
    expect_error_prefix("c2s:\n  port: 5222\n bad: 1\n", NAME ":3: YAML syntax error: ");
    expect_error_prefix("c2s:\n\tport: 1\n", NAME ":2: YAML syntax error: ");
    expect_error_prefix("domain: 'unterminated\nlog:\n  level: info\n",
                        NAME ":4: YAML syntax error: ");
    /* Reader errors (invalid UTF-8) are placed on a line too. */
    expect_error_prefix("domain: a\nlog:\n  level: \xff\n", NAME ":3: YAML syntax error: ");
    expect_error("domain: a\n---\ndomain: b\n", NAME ":2: only one YAML document is allowed");
}

static void test_domain(void **state) {
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"localhost", "localhost"},
        {"Example.COM", "example.com"},
        {"a-b.c-d.example", "a-b.c-d.example"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
        {"127.0.0.1", "127.0.0.1"},
        {"'[::1]'", "[::1]"},
        {"'[2001:DB8::1]'", "[2001:db8::1]"},
        {"1.example", "1.example"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[128];
        struct tern_config c;
        snprintf(yaml, sizeof yaml, "domain: %s\n", ok[i].in);
        load_ok(&c, yaml);
        assert_string_equal(c.domain, ok[i].out);
        tern_config_free(&c);
    }

    char label63[64 + 16], label64[65 + 16];
    memset(label63, 'a', 63);
    strcpy(label63 + 63, ".example");
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".example");
    struct tern_config c;
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "domain: %s\n", label63);
    load_ok(&c, yaml);
    tern_config_free(&c);

    static const char *const bad[] = {"-a.example", "a-.example", "a..example", ".example",
                                      "example.",   "exa mple",   "exa_mple",   "user@example",
                                      "'[::1'",     "'[nope]'",   "'::1'",      "'ü.example'",
                                      "999.1.1.1",  "1.2.3",      "example.123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(yaml, sizeof yaml, "domain: %s\n", bad[i]);
        expect_error_prefix(yaml, NAME ":1: key 'domain': expected a domain name or IP address of "
                                       "at most 1023 bytes, got '");
    }
    snprintf(yaml, sizeof yaml, "domain: %s\n", label64);
    expect_error_prefix(yaml, NAME ":1: key 'domain': expected a domain name");

    /* 1023 bytes is accepted, 1024 is not, with every label valid in both. */
    char name[1100];
    size_t n = 0;
    for (int l = 0; l < 15; l++) {
        memset(name + n, 'a', 63);
        n += 63;
        name[n++] = '.';
    }
    memset(name + n, 'a', 62);
    n += 62;
    strcpy(name + n, "b");
    assert_int_equal(strlen(name), 1023);
    snprintf(yaml, sizeof yaml, "domain: %s\n", name);
    load_ok(&c, yaml);
    assert_string_equal(c.domain, name);
    tern_config_free(&c);
    strcpy(name + n, ".b");
    assert_int_equal(strlen(name), 1024);
    snprintf(yaml, sizeof yaml, "domain: %s\n", name);
    expect_error_prefix(yaml, NAME ":1: key 'domain': expected a domain name");
}

static void test_address(void **state) {
    static const char *const ok[] = {"127.0.0.1", "0.0.0.0", "'::'",
                                     "'::1'",     "fe80::1", "2001:db8::42"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[128];
        struct tern_config c;
        snprintf(yaml, sizeof yaml, "c2s_tls:\n  address: %s\n", ok[i]);
        load_ok(&c, yaml);
        tern_config_free(&c);
    }
    expect_error("c2s:\n  address: localhost\n",
                 NAME ":2: key 'c2s.address': expected an IPv4 or IPv6 address such as 127.0.0.1, "
                      "0.0.0.0 or \"::\" (in quotes), got 'localhost'");
    expect_error("c2s:\n  address: '[::1]'\n",
                 NAME ":2: key 'c2s.address': expected an IPv4 or IPv6 address such as 127.0.0.1, "
                      "0.0.0.0 or \"::\" (in quotes), got '[::1]'");
    expect_error("c2s:\n  address: 256.0.0.1\n",
                 NAME ":2: key 'c2s.address': expected an IPv4 or IPv6 address such as 127.0.0.1, "
                      "0.0.0.0 or \"::\" (in quotes), got '256.0.0.1'");
}

static void test_log_and_backend(void **state) {
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        char yaml[64];
        struct tern_config c;
        snprintf(yaml, sizeof yaml, "log:\n  level: %s\n", levels[i]);
        load_ok(&c, yaml);
        assert_int_equal(c.log_level, i);
        tern_config_free(&c);
    }
    expect_error("log:\n  level: verbose\n",
                 NAME ":2: key 'log.level': expected one of debug, info, warn, error, got "
                      "'verbose'");
    expect_error("storage:\n  backend: postgres\n",
                 NAME ":2: key 'storage.backend': expected 'sqlite' (the only backend for now), "
                      "got 'postgres'");
}

static void test_cross_keys(void **state) {
    expect_error("domain: a\ntls:\n  certificate: /c.pem\n",
                 NAME ":3: key 'tls.certificate': 'tls.key' must be given too (both or neither)");
    expect_error("tls:\n\n  key: /k.pem\n",
                 NAME ":3: key 'tls.key': 'tls.certificate' must be given too (both or neither)");
    expect_error("c2s_tls:\n  port: 5222\n",
                 NAME ":2: key 'c2s_tls.port': c2s and c2s_tls cannot both listen on 127.0.0.1 "
                      "port 5222");
    struct tern_config c;
    /* Same port on different addresses, or both disabled, is fine. */
    load_ok(&c, "c2s_tls:\n  port: 5222\n  address: '::1'\n");
    tern_config_free(&c);
    load_ok(&c, "c2s:\n  port: 0\nc2s_tls:\n  port: 0\n");
    tern_config_free(&c);
}

static void test_push_wake_keys(void **state) {
    struct tern_config c;
    (void)state;
    load_ok(&c, "domain: a\n");
    assert_int_equal(c.push_wake_before_expiry, 0);
    assert_int_equal(c.push_on_start, 0);
    tern_config_free(&c);
    load_ok(&c, "push:\n  wake_before_expiry: 2m\n  on_start: true\n");
    assert_int_equal(c.push_wake_before_expiry, 120);
    assert_int_equal(c.push_on_start, 1);
    tern_config_free(&c);
    expect_error_prefix("push:\n  wake_before_expiry: 2d\n",
                        NAME ":2: key 'push.wake_before_expiry'");
}

static void test_components(void **state) {
    struct tern_config c;
    /* Block and flow style; domains are lower-cased, secrets kept as written. */
    load_ok(&c, "components:\n  push.localhost: s3cret\n  Gw.Example.Org: 'A b:c'\n");
    assert_int_equal(c.ncomponents, 2);
    assert_string_equal(c.component_domains[0], "push.localhost");
    assert_string_equal(c.component_secrets[0], "s3cret");
    assert_string_equal(c.component_domains[1], "gw.example.org");
    assert_string_equal(c.component_secrets[1], "A b:c");
    tern_config_free(&c);
    load_ok(&c, "components: {push.localhost: \"s3cret\", '[::1]': 12345}\n");
    assert_int_equal(c.ncomponents, 2);
    assert_string_equal(c.component_domains[1], "[::1]");
    assert_string_equal(c.component_secrets[1], "12345");
    tern_config_free(&c);
    /* Nothing, or an empty mapping: no components. */
    load_ok(&c, "components:\n");
    assert_int_equal(c.ncomponents, 0);
    tern_config_free(&c);
    load_ok(&c, "components: {}\n");
    assert_int_equal(c.ncomponents, 0);
    tern_config_free(&c);
    /* The listener section alone; port 0 disables it. */
    load_ok(&c, "component:\n  port: 0\n");
    assert_int_equal(c.component.port, 0);
    tern_config_free(&c);
    /* 'domain' may come after the components that must differ from it. */
    load_ok(&c, "components:\n  localhost: x\ndomain: example.org\n");
    assert_string_equal(c.component_domains[0], "localhost");
    tern_config_free(&c);

    expect_error("components: push.localhost\n",
                 NAME ":1: key 'components': expected a mapping of component domains to their "
                      "secrets, got a scalar");
    expect_error("components:\n  - push.localhost\n",
                 NAME ":1: key 'components': expected a mapping of component domains to their "
                      "secrets, got a sequence");
    expect_error("domain: a\ncomponents:\n  push.localhost: a\n  exa_mple: b\n",
                 NAME ":4: key 'components.exa_mple': a component's name must be a domain name "
                      "or IP address of at most 1023 bytes");
    expect_error("components:\n  user@push.localhost: b\n",
                 NAME ":2: key 'components.user@push.localhost': a component's name must be a "
                      "domain name or IP address of at most 1023 bytes");
    expect_error("components:\n  push.localhost:\n",
                 NAME ":2: key 'components.push.localhost': expected a non-empty secret, got "
                      "nothing");
    expect_error("components:\n  push.localhost: ''\n",
                 NAME ":2: key 'components.push.localhost': expected a non-empty secret, got ''");
    expect_error("components:\n  push.localhost: [a, b]\n",
                 NAME ":2: key 'components.push.localhost': expected a non-empty secret, got a "
                      "sequence");
    expect_error("components:\n  push.localhost: {secret: a}\n",
                 NAME ":2: key 'components.push.localhost': expected a non-empty secret, got a "
                      "mapping");
    /* The secret itself is never quoted back. */
    expect_error("components:\n  push.localhost: \"se\\0cret\"\n",
                 NAME ":2: key 'components.push.localhost': expected a non-empty secret, got a "
                      "string containing a NUL character");
    expect_error("components:\n  ~: a\n",
                 NAME ":2: key 'components': expected a component domain as a key, got nothing");
    /* Duplicates are found after lower-casing. */
    expect_error("components:\n  push.localhost: a\n  x.localhost: b\n  PUSH.localhost: c\n",
                 NAME ":4: key 'components.push.localhost' given twice (first on line 2)");
    expect_error("components:\n  push.localhost: a\ncomponents:\n  x.localhost: b\n",
                 NAME ":3: key 'components' given twice (first on line 1)");
    expect_error("components:\n  push.localhost: a\n  Localhost: b\n",
                 NAME ":3: key 'components.localhost': a component cannot have the server's own "
                      "domain");
    expect_error("components:\n  example.org: a\ndomain: Example.org\n",
                 NAME ":2: key 'components.example.org': a component cannot have the server's "
                      "own domain");
    expect_error("component:\n  port: 70000\n",
                 NAME ":2: key 'component.port': expected an integer from 0 to 65535, got '70000'");
    expect_error("component:\n  address: localhost\n",
                 NAME ":2: key 'component.address': expected an IPv4 or IPv6 address such as "
                      "127.0.0.1, 0.0.0.0 or \"::\" (in quotes), got 'localhost'");
    expect_error("component:\n  port: 5222\ncomponents:\n  push.localhost: a\n",
                 NAME ":2: key 'component.port': component and c2s cannot both listen on "
                      "127.0.0.1 port 5222");
    expect_error("c2s_tls:\n  port: 5347\ncomponents:\n  push.localhost: a\n",
                 NAME ":2: key 'c2s_tls.port': c2s_tls and component cannot both listen on "
                      "127.0.0.1 port 5347");
    /* Without components the listener does not open, so its port may be anything. */
    load_ok(&c, "component:\n  port: 5222\n");
    tern_config_free(&c);
    load_ok(&c, "component:\n  port: 5222\n  address: '::1'\ncomponents:\n  push.localhost: a\n");
    tern_config_free(&c);
    /* A failure after some components were read leaves none behind. */
    char err[256];
    load_ok(&c, "components:\n  a.localhost: a\n");
    int rc = tern_config_load_string(&c, NAME, "components:\n  b.localhost: b\nlog: 1\n", err,
                                     sizeof err);
    assert_int_equal(rc, TERN_E_INVAL);
    assert_defaults(&c);
    tern_config_free(&c);
}

static void test_failure_resets(void **state) {
    struct tern_config c;
    char err[256];
    load_ok(&c, "domain: example.org\nc2s:\n  port: 1\n");
    assert_string_equal(c.domain, "example.org");
    /* Loading again replaces everything; a failure midway leaves defaults only. */
    int rc =
        tern_config_load_string(&c, NAME, "domain: other.org\nc2s:\n  port: x\n", err, sizeof err);
    assert_int_equal(rc, TERN_E_INVAL);
    assert_defaults(&c);
    assert_null(c.path);
    /* A tiny or absent err buffer is respected. */
    char small[8];
    rc = tern_config_load_string(&c, NAME, "c2s: 1\n", small, sizeof small);
    assert_int_equal(rc, TERN_E_INVAL);
    assert_string_equal(small, "test.ya");
    rc = tern_config_load_string(&c, NAME, "c2s: 1\n", NULL, 0);
    assert_int_equal(rc, TERN_E_INVAL);
    rc = tern_config_load_string(&c, NAME, "c2s: 1\n", small, 0);
    assert_int_equal(rc, TERN_E_INVAL);
    /* Starting from defaults (not zero) does not leak. */
    tern_config_free(&c);
    tern_config_defaults(&c);
    rc = tern_config_load_string(&c, NAME, "domain: x.org\n", err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.domain, "x.org");
    tern_config_free(&c);
}

static void test_value_shown_safely(void **state) {
    expect_error("log:\n  level: \"a\\x01b\\0c\"\n",
                 NAME ":2: key 'log.level': expected one of debug, info, warn, error, got "
                      "'a?b?c'");
    /* NUL inside a path would silently truncate it: refused. */
    expect_error("data_dir: \"/srv\\0/x\"\n",
                 NAME ":1: key 'data_dir': expected a file or directory path, got '/srv?/x'");
}

static void test_file(void **state) {
    char path[] = "/tmp/tern-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(full_yaml, f);
    fclose(f);

    struct tern_config c;
    char err[512];
    memset(&c, 0, sizeof c);
    assert_int_equal(tern_config_load(&c, path, err, sizeof err), 0);
    assert_string_equal(c.path, path);
    assert_string_equal(c.domain, "chat.example.org");
    assert_int_equal(c.max_stanza_size, 1024 * 1024);

    /* Errors carry the file name. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("domain: a\n\nc2s:\n  prot: 1\n", f);
    fclose(f);
    assert_int_equal(tern_config_load(&c, path, err, sizeof err), TERN_E_INVAL);
    char want[256];
    snprintf(want, sizeof want,
             "%s:4: unknown key 'c2s.prot' (known keys in 'c2s': address, port, "
             "starttls_required)",
             path);
    assert_string_equal(err, want);
    assert_defaults(&c);
    unlink(path);

    assert_int_equal(tern_config_load(&c, path, err, sizeof err), TERN_E_IO);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(err, want);
    assert_defaults(&c);
    assert_null(c.path);

    assert_int_equal(tern_config_load(&c, "/", err, sizeof err), TERN_E_IO);
    assert_string_equal(err, "/: cannot read: Is a directory");
    tern_config_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_flow_style),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_store_path_default),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_wrong_kind),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_domain),
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_log_and_backend),
        cmocka_unit_test(test_cross_keys),
        cmocka_unit_test(test_components),
        cmocka_unit_test(test_push_wake_keys),
        cmocka_unit_test(test_failure_resets),
        cmocka_unit_test(test_value_shown_safely),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
