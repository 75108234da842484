/*
 * A shard: one libuv loop and the connections it owns. A connection is only
 * ever touched from its shard's thread; anything another shard wants done to
 * it (deliver a stanza, close it) travels as a message through the inbox.
 */
#ifndef TERN_SERVER_SHARD_H
#define TERN_SERVER_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/map.h"
#include "xmpp/errors.h"

struct tern_server;
struct tern_c2s;
struct tern_xml;

/** Size of the read buffer each shard lends to the connection being read. */
#define TERN_SHARD_READBUF 65536

/** What a message through the inbox asks for. */
enum tern_shard_msg_kind {
    TERN_SHARD_DELIVER, /* hand stanza to session uid */
    TERN_SHARD_KICK,    /* close session uid with stream error cond */
};

/** One message for a shard's inbox; the inbox takes ownership of it and its stanza. */
struct tern_shard_msg {
    struct tern_shard_msg *next;   /* inbox link */
    enum tern_shard_msg_kind kind; /* what to do */
    uint64_t uid;                  /* target session */
    struct tern_xml *stanza;       /* DELIVER: the stanza (owned) */
    enum tern_stream_error cond;   /* KICK: the condition */
};

struct tern_shard {
    int id;                     /* index in server->shards */
    uv_loop_t *loop;            /* this shard's loop */
    struct tern_server *server; /* shared context */
    struct tern_c2s *conns;     /* every connection of this shard (intrusive list) */
    size_t nconns;              /* entries in conns */
    struct tern_map bound;      /* session uid (8 bytes) -> struct tern_c2s*, bound ones */
    uv_async_t inbox_async;     /* wakes the loop when the inbox has messages */
    uv_mutex_t inbox_lock;      /* guards inbox_head/tail */
    struct tern_shard_msg *inbox_head, *inbox_tail; /* pending messages, FIFO */
    char *readbuf; /* TERN_SHARD_READBUF bytes, lent to one read at a time */
    void (*on_idle)(struct tern_shard *s); /* called when nconns drops to 0 (shutdown) */
};

/** Initialise a shard on loop (not started; the caller runs the loop). */
void tern_shard_init(struct tern_shard *s, int id, uv_loop_t *loop, struct tern_server *server);
/** Close the shard's own handles; call once its connections are gone. */
void tern_shard_close(struct tern_shard *s);

/** Post a message to s from any thread. Takes ownership of msg. */
void tern_shard_post(struct tern_shard *s, struct tern_shard_msg *msg);

/** Register a bound connection under uid (shard thread only). */
void tern_shard_bind(struct tern_shard *s, uint64_t uid, struct tern_c2s *c);
/** Forget uid (shard thread only). */
void tern_shard_unbind(struct tern_shard *s, uint64_t uid);
/** The bound connection with uid, or NULL (shard thread only). */
struct tern_c2s *tern_shard_find(struct tern_shard *s, uint64_t uid);

/** Close every connection with cond (shutdown). */
void tern_shard_close_all(struct tern_shard *s, enum tern_stream_error cond, const char *text);

#endif
