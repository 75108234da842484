/* Presence and subscriptions (RFC 6121 §3, §4), with the roster module. */
#ifndef TERN_MOD_PRESENCE_H
#define TERN_MOD_PRESENCE_H

struct tern_c2s;
struct tern_shard;
struct tern_jid;
struct tern_xml;
struct tern_module;
struct tern_roster_item;

/**
 * The presence module (src/mod/presence.c): RFC 6121 §3 and §4 for local
 * accounts. It subscribes to TERN_EV_SESSION_CLOSING (the unavailable
 * broadcast of a session that ends while available) and TERN_EV_ACCOUNT_DELETED
 * (cached subscription state about the deleted account is dropped), and
 * fires TERN_EV_AVAILABLE / TERN_EV_UNAVAILABLE. See docs/internals/presence.md.
 */
extern const struct tern_module tern_mod_presence;

/**
 * A presence stanza sent by the bound local session c ('from' already
 * stamped with c's full JID); takes ownership. Without 'to': initial or
 * updated broadcast presence, or unavailable (RFC 6121 §4.2-4.5). With
 * 'to': directed presence (§4.6) or a subscription request/answer
 * (subscribe, subscribed, unsubscribe, unsubscribed: §3, outbound rules).
 */
void tern_presence_outbound(struct tern_c2s *c, struct tern_xml *stanza_take);

/**
 * A presence stanza addressed to the local account to (bare or full JID)
 * from anyone else, after the sender's server did its outbound processing;
 * takes ownership. Inbound rules of RFC 6121 §3 (subscription states,
 * Appendix A), probes (§4.3) and delivery of availability (§4.4-4.6). What
 * an unknown local account answers follows the RFC (§3.1.3, §4.3.2).
 */
void tern_presence_inbound(struct tern_shard *shard, const struct tern_jid *to,
                           struct tern_xml *stanza_take);

/* ---- internal: the subscription state machine (shared with the unit tests) ---- */

/** Subscription-related presence types. */
enum tern__sub_type {
    TERN__SUB_SUBSCRIBE,
    TERN__SUB_SUBSCRIBED,
    TERN__SUB_UNSUBSCRIBE,
    TERN__SUB_UNSUBSCRIBED,
};

/** What a transition asks the server to do besides storing the item. */
enum {
    TERN__FX_ROUTE = 1,       /* outbound: route to the contact; inbound: deliver to the user */
    TERN__FX_AUTOREPLY = 2,   /* inbound subscribe: answer 'subscribed' (§3.1.3, §3.4) */
    TERN__FX_GAINED_FROM = 4, /* the contact now gets the user's presence: send it (§3.1.5) */
    TERN__FX_LOST_FROM = 8,   /* it no longer does: send unavailable (§3.2.2, §3.3.3) */
};

/**
 * RFC 6121 Appendix A: the user's item for the contact (*exists 0: none,
 * item zeroed but for its jid) after the user sent (inbound 0, A.2) or
 * received (inbound 1, A.3) a subscription stanza of type. Changes item and
 * *exists in place, sets *write when the stored item must change, and
 * returns the TERN__FX_* effects. Pure: no I/O, any thread.
 */
unsigned tern__sub_transition(enum tern__sub_type type, int inbound, struct tern_roster_item *item,
                              int *exists, int *write);

#endif
