/*
 * ternctl internals shared by its commands: exit statuses, the rules an
 * account's username and password must meet, and store error messages. The
 * single-account commands (ternctl.c) and the bulk import (import.c) apply
 * the same rules through these functions.
 */
#ifndef TERN_CLI_CTL_H
#define TERN_CLI_CTL_H

#include <stddef.h>

struct tern_config;
struct tern_store_backend;

#define TERN__CTL_EXIT_FAIL  1 /* the command could not be done */
#define TERN__CTL_EXIT_USAGE 2 /* bad arguments */

/** Longest password in bytes, before SASLprep (the same ceiling as xmpp/scram.c). */
#define TERN__CTL_PASSWORD_MAX 1023

/**
 * Prepare the user named by arg ("alice" or "alice@DOMAIN" with DOMAIN the
 * configured one) as a JID localpart (RFC 7622). Returns 0 and a malloc'd
 * localpart in *user, or -1 with *user NULL and the reason (which quotes arg,
 * no "ternctl: " prefix, no newline) in why.
 */
int tern__ctl_prep_user(const char *arg, const struct tern_config *cfg, char **user, char *why,
                        size_t whylen);

/**
 * Check that the len bytes at pw (NUL-terminated at pw[len]) make an
 * acceptable password: not empty, at most TERN__CTL_PASSWORD_MAX bytes, no
 * NUL byte, UTF-8, allowed by SASLprep (RFC 4013). Returns 0, or -1 with the
 * reason in why. The reason never quotes the password.
 */
int tern__ctl_check_password(const char *pw, size_t len, char *why, size_t whylen);

/**
 * Print "ternctl: WHAT: ..." on stderr for a store error other than the
 * expected TERN_E_EXISTS / TERN_E_NOTFOUND (a locked database gets advice).
 */
void tern__ctl_store_error(const char *what, int rc);

/**
 * ternctl import: create the accounts listed in path ("-" or NULL: stdin),
 * all or none (see docs/ternctl.md). skip_existing: an account that exists
 * already is left as it is and counted, instead of failing the import.
 * Returns 0 or TERN__CTL_EXIT_FAIL after printing why.
 */
int tern__ctl_import(struct tern_store_backend *b, const struct tern_config *cfg, const char *path,
                     int skip_existing);

#endif
