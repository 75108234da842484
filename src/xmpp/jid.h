/* JIDs (RFC 7622): parsing, preparation and comparison. */
#ifndef TERN_XMPP_JID_H
#define TERN_XMPP_JID_H

#include <stddef.h>

/** Each part at most 1023 bytes after preparation (RFC 7622 §3.1). */
#define TERN_JID_PART_MAX 1023

/**
 * A prepared JID. Strings are owned by the struct; local and resource are
 * NULL when absent. Parts are stored prepared: local part case-folded and
 * normalized, domain lower-cased and IDNA-mapped (a trailing dot removed),
 * resource normalized but case preserved.
 */
struct tern_jid {
    char *local;    /* localpart or NULL */
    char *domain;   /* domainpart, never NULL in a valid JID */
    char *resource; /* resourcepart or NULL */
};

/**
 * Parse and prepare s. Returns 0 or TERN_E_INVAL (empty part, part too long,
 * forbidden character such as one of "&'/:<>@ in a localpart, invalid UTF-8,
 * bad domain). On failure jid is left zeroed.
 */
int tern_jid_parse(struct tern_jid *jid, const char *s);

/** Prepare a localpart alone (used for usernames); caller frees *out. */
int tern_jid_prep_local(const char *in, char **out);
/** Prepare a resourcepart alone; caller frees *out. */
int tern_jid_prep_resource(const char *in, char **out);
/** Prepare a domainpart alone; caller frees *out. */
int tern_jid_prep_domain(const char *in, char **out);

/** Release the parts; jid is zeroed. */
void tern_jid_free(struct tern_jid *jid);
/** Deep copy. */
void tern_jid_copy(struct tern_jid *dst, const struct tern_jid *src);

/** "local@domain/resource" (newly allocated). */
char *tern_jid_full(const struct tern_jid *jid);
/** "local@domain" (newly allocated). */
char *tern_jid_bare(const struct tern_jid *jid);

/** Equality of prepared JIDs; with bare_only the resources are ignored. */
int tern_jid_equal(const struct tern_jid *a, const struct tern_jid *b, int bare_only);

#endif
