/*
 * Rosters (RFC 6121 §2): jabber:iq:roster, roster pushes, and what the
 * presence module shares with the roster module (src/mod/presence.c):
 *
 * - the roster transaction: one item of one user's roster read, changed and
 *   written back on the store thread in one step, then its side effects
 *   (pushes, stanzas) acted out on the loop;
 * - the account view: for every account with an available resource, the
 *   subscription flags of its contacts and the last presence of each of its
 *   available resources, kept in step with the store, so that broadcasts and
 *   probes never wait for the database.
 *
 * See docs/internals/presence.md for the design and its invariants.
 */
#ifndef TERN_MOD_ROSTER_H
#define TERN_MOD_ROSTER_H

#include <stddef.h>
#include <stdint.h>

#include "server/module.h"
#include "store/store.h"

struct tern_server;
struct tern_shard;
struct tern_xml;

#define TERN_NS_ROSTER      "jabber:iq:roster"
#define TERN_NS_ROSTERVER   "urn:xmpp:features:rosterver"
#define TERN_NS_PREAPPROVAL "urn:xmpp:features:pre-approval"

/**
 * Most items a roster holds, hidden (Pending In only) items included. A
 * roster set or an outbound subscription that would add one more is refused
 * with <policy-violation/>; an inbound subscription request that would have
 * to remember one more with <resource-constraint/> (docs/internals/presence.md).
 */
#define TERN_ROSTER_MAX 1000
/** Longest item name and group name, in bytes (RFC 6121 §2.3.3: server-configured). */
#define TERN_ROSTER_NAME_MAX 1023
/** Most groups one item may be in. */
#define TERN_ROSTER_GROUPS_MAX 64

extern const struct tern_module tern_mod_roster;

/* ---- items and pushes ----------------------------------------------------------- */

/** Append <item/> for item (jabber:iq:roster) to query; subscription 'remove' if removed. */
void tern__roster_item_el(struct tern_xml *query, const struct tern_roster_item *item, int removed);

/**
 * Roster push (RFC 6121 §2.1.6) of item, with version ver, to every
 * interested resource of the account bare. Loop thread of shard.
 */
void tern__roster_push(struct tern_shard *shard, const char *bare,
                       const struct tern_roster_item *item, int removed, uint64_t ver);

/** Deep copy of src into dst (dst's old contents are not freed). */
void tern__roster_item_copy(struct tern_roster_item *dst, const struct tern_roster_item *src);

/* ---- the account view --------------------------------------------------------------- */

/** Subscription flags of one contact in a view. */
enum {
    TERN__VIEW_TO = TERN_SUB_TO,     /* the account receives the contact's presence */
    TERN__VIEW_FROM = TERN_SUB_FROM, /* the contact receives the account's presence */
    TERN__VIEW_ASK = 4,              /* Pending Out */
    TERN__VIEW_PENDING_IN = 8,       /* Pending In */
    TERN__VIEW_HIDDEN = 16,          /* not part of the client's roster */
    TERN__VIEW_APPROVED = 32,        /* pre-approved */
};

struct tern__view;

/**
 * A reference on bare's view, created (and its roster loaded from the store)
 * if it does not exist. Taken by a session that becomes available; any thread.
 */
struct tern__view *tern__view_acquire(struct tern_server *srv, const char *bare);
/** A reference on bare's view if it exists (bare has an available resource), else NULL. */
struct tern__view *tern__view_find(const char *bare);
/** Drop a reference; sets *v to NULL. The view goes with its last reference. */
void tern__view_release(struct tern__view **v);

/**
 * Continuation of tern__view_when_ready. shard is the shard whose loop
 * runs it (the caller's when run at once, the store's otherwise); NULL when
 * the store is closing and nothing may be done but freeing ud. The view is
 * borrowed for the call.
 */
typedef void (*tern__view_fn)(struct tern_shard *shard, struct tern__view *v, void *ud);

/**
 * Run fn once every change to v's account submitted before this call is in
 * v: at once if nothing is in flight, else after the store has completed
 * what is (in submission order, so two calls run in the order they were
 * made). Called on shard's loop thread.
 */
void tern__view_when_ready(struct tern_shard *shard, struct tern__view *v, tern__view_fn fn,
                           void *ud);

/** Whether v holds the account's roster (a load that failed leaves it empty). */
int tern__view_loaded(struct tern__view *v);

/** Flags of contact in v (0 if not in the roster). */
unsigned tern__view_flags(struct tern__view *v, const char *contact);

/**
 * Contacts whose flags intersect any (and, if hidden is 0, that are not
 * hidden): a malloc'd array of malloc'd strings (tern_store_free_list), *n set.
 */
char **tern__view_contacts(struct tern__view *v, unsigned any, int hidden, size_t *n);

/**
 * Drop contact from every view (the account contact was deleted, and with
 * it every roster item about it). Any thread.
 */
void tern__views_forget(const char *contact);

/**
 * Remember presence (copied) as the last presence of the available session
 * uid, whose full JID is full. Keyed by session, not JID: a resource bound
 * again replaces its session, and the old one may end after the new one
 * became available.
 */
void tern__view_set_last(struct tern__view *v, const char *full, uint64_t uid,
                         const struct tern_xml *presence);
/** Forget the last presence of session uid (it became unavailable). */
void tern__view_del_last(struct tern__view *v, uint64_t uid);
/**
 * Copies of the last presence of each available resource, 'from' set to the
 * resource's full JID and 'to' to to: a malloc'd array of roots (refs 1), *n set.
 */
struct tern_xml **tern__view_lasts(struct tern__view *v, const char *to, size_t *n);

/**
 * Send to 'to', from each available resource of the account owner, its last
 * presence, or with unavailable an unavailable presence instead (RFC 6121
 * §3.1.5 after an approval, §3.2.2 / §3.3.3 after a cancellation). Nothing
 * if owner has no available resource.
 */
void tern__send_presence_of(struct tern_shard *shard, const char *owner, const char *to,
                            int unavailable);

/* ---- the roster transaction ---------------------------------------------------------- */

struct tern__roster_txn;

/**
 * The transition, on the store thread: *item is the current item (its jid
 * always set, the rest zero when *exists is 0); change it and *exists as
 * the operation says, and record in t->fx what the loop must do. Return 0,
 * or a tern_err to fail the transaction without writing. Must not touch
 * anything but t and item.
 */
typedef int (*tern__txn_apply_fn)(struct tern__roster_txn *t, struct tern_roster_item *item,
                                  int *exists);

/**
 * The side effects, on the loop thread of shard, after the write is durable
 * (err 0) or failed (err < 0: nothing was written, t->before/after are
 * unset). The owner's view already reflects the change. t is freed after.
 */
typedef void (*tern__txn_done_fn)(struct tern_shard *shard, struct tern__roster_txn *t, int err);

/**
 * One read-modify-write of the item for contact in user's roster. Allocate
 * with tern__roster_txn_new, fill the caller's fields, submit.
 */
struct tern__roster_txn {
    struct tern_store_job job;      /* queued in the store */
    struct tern_server *srv;        /* the server */
    int op;                         /* what apply does (the caller's enum) */
    char *user;                     /* owner's localpart (owned) */
    char *owner;                    /* owner's bare JID (owned) */
    char *contact;                  /* the item's bare JID (owned) */
    tern__txn_apply_fn apply;       /* store thread */
    tern__txn_done_fn done;         /* loop thread */
    struct tern_xml *stanza;        /* what caused it (a reference, released with t), or NULL */
    char *reply_to;                 /* full JID to answer (owned), or NULL */
    struct tern_roster_item req;    /* roster set: the requested item (owned) */
    size_t count;                   /* store thread: items in the roster before */
    struct tern_roster_item before; /* the item before (jid NULL: there was none) */
    struct tern_roster_item after;  /* the item after (jid NULL: there is none) */
    unsigned fx;                    /* effects decided by apply (the caller's bits) */
    int write;                      /* set by apply: the item changed and must be written */
    uint64_t version;               /* roster version after the write */
    struct tern__view *view;        /* owner's view (a reference, pending counted), or NULL */
};

/** A zeroed transaction owning copies of the strings. */
struct tern__roster_txn *tern__roster_txn_new(struct tern_server *srv, const char *owner_bare,
                                              const char *contact);

/**
 * Queue t (taken). On failure (the store is closing) t is freed, done is
 * not called, and TERN_E_CLOSED is returned.
 */
int tern__roster_txn_submit(struct tern__roster_txn *t);

/* ---- small helpers shared by both modules ---------------------------------------------- */

/** The shard whose loop runs store completions (server.h: shard 0). */
struct tern_shard *tern__store_shard(struct tern_server *srv);

/**
 * Deliver stanza (taken) to every resource of bare whose session info
 * matches: available ones if want_available, interested ones if
 * want_interested (either suffices when both are set). Returns how many got it.
 */
size_t tern__deliver_local(struct tern_shard *shard, const char *bare, struct tern_xml *stanza_take,
                           int want_available, int want_interested);

#endif
