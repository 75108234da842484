/* The c2s connection struct, shared by c2s.c (streams, bind) and sasl.c. */
#ifndef TERN_SERVER_C2S_INTERNAL_H
#define TERN_SERVER_C2S_INTERNAL_H

#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "server/c2s.h"
#include "server/outq.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"

struct tern_tls;
struct tern_xml_parser;
struct tern_xml;

/** One stanza sent and not yet acknowledged (XEP-0198), oldest first. */
struct tern_sm_entry {
    struct tern_sm_entry *next; /* newer entry */
    struct tern_xml *stanza;    /* a reference */
    int64_t stamp;              /* when it was queued, ms since the epoch (for <delay/>) */
};

/** Stream management state of a session (smacks.c). */
struct tern_sm {
    int enabled;                /* <enabled/> was sent */
    int resumable;              /* resume='true' was granted */
    int timer_open;             /* timer is initialised (closed in teardown) */
    uv_timer_t timer;           /* ack requests, ack timeout, hibernation expiry */
    char id[33];                /* resumption id */
    int timeout;                /* resume timeout granted, seconds */
    uint32_t h_in;              /* stanzas handled from the client (XEP-0198 h, wraps) */
    uint32_t h_out;             /* stanzas sent to the client */
    uint32_t acked;             /* last h the client acknowledged */
    struct tern_sm_entry *head; /* unacked, oldest first */
    struct tern_sm_entry *tail; /* newest */
    uint32_t queued;            /* entries in the queue */
    uint32_t since_r;           /* stanzas sent since the last <r/> */
    uint64_t r_sent_at;         /* loop ms when an unanswered <r/> went out; 0 if none */
    int hibernating;            /* transport gone, waiting for resumption */
};

/** Client state indication (csi.c): what waits while the client is inactive. */
struct tern_csi {
    int inactive;               /* <inactive/> in force */
    struct tern_sm_entry *head; /* held stanzas, oldest first (reusing the SM entry) */
    struct tern_sm_entry *tail; /* newest */
    int count;                  /* entries held */
};

enum tern_sasl_mech {
    TERN_MECH_NONE = 0,
    TERN_MECH_PLAIN,
    TERN_MECH_SCRAM_SHA1,
    TERN_MECH_SCRAM_SHA256,
};

/** Where a SASL exchange stands. */
enum tern_sasl_state {
    TERN_SASL_IDLE = 0,   /* no exchange */
    TERN_SASL_INITIAL,    /* <auth> had no initial response; empty challenge sent */
    TERN_SASL_LOOKUP,     /* waiting for the store's credentials */
    TERN_SASL_CHALLENGED, /* server-first sent, waiting for <response> */
    TERN_SASL_CHECKING,   /* PLAIN password being checked off the loop */
};

struct tern_c2s {
    uv_tcp_t tcp;     /* the socket; tcp.data points back here */
    uv_timer_t timer; /* pre-auth timeout; after auth the parser trim (5 s); the close deadline */
    struct tern_shard *shard;     /* owning shard */
    struct tern_c2s *prev, *next; /* shard's connection list */
    int refs;                     /* handles open + async operations pending; freed at 0 */

    char ip[46];    /* peer address, for limits and logs */
    char peer[56];  /* "ip:port" or "[ip]:port", for logs */
    int ip_counted; /* ip holds a slot in iplimits */

    struct tern_tls *tls; /* NULL until TLS starts */
    int direct_tls;       /* came in on the XEP-0368 port */
    struct tern_outq out; /* bytes to write (ciphertext once TLS runs) */
    int in_read;          /* inside the read callback: flush at its end */

    struct tern_xml_parser *parser; /* the current stream's parser */
    int reset_parser;               /* start a new stream after the current feed */
    int start_tls;                  /* switch to TLS after the current feed */
    int header_sent;                /* our stream header went out */
    char stream_id[25];             /* id of our current stream */

    int authenticated;             /* SASL succeeded */
    int bound;                     /* a resource is bound */
    uint64_t uid;                  /* session id once bound */
    struct tern_jid jid;           /* local@domain after SASL, /resource after bind */
    char *bare;                    /* "local@domain" after SASL */
    struct tern_c2s_presence pres; /* presence state once bound (presence module) */

    enum tern_sasl_mech mech;        /* mechanism in progress */
    int mech_plus;                   /* -PLUS variant */
    enum tern_sasl_state sasl;       /* exchange state */
    struct tern_scram_server *scram; /* SCRAM state */
    enum tern_cb_type cb_type;       /* channel binding the client chose */
    char *sasl_user;                 /* prepared username of the exchange */
    int closing;                     /* close started; nothing more is processed */
    int torn_down;                   /* teardown() ran */
    int transport_gone;              /* socket closed (hibernation or teardown) */
    struct tern_sm sm;               /* stream management */
    struct tern_csi csi;             /* client state indication */
};

/** tern_c2s_close() with extra XML inside <stream:error/> (after the condition). */
void tern__c2s_close_with(struct tern_c2s *c, enum tern_stream_error cond, const char *text,
                          const char *extra);

/** Write raw XML text to the client (encrypting if TLS runs). */
void tern__c2s_write(struct tern_c2s *c, const char *data, size_t len);
/** Serialize and write one element in jabber:client. */
void tern__c2s_write_el(struct tern_c2s *c, const struct tern_xml *el);
/** Flush c->out unless inside the read callback (which flushes at its end). */
void tern__c2s_flush(struct tern_c2s *c);
/** Hold / release the struct across an asynchronous operation. */
void tern__c2s_ref(struct tern_c2s *c);
void tern__c2s_unref(struct tern_c2s *c);
/** SASL succeeded for c->sasl_user: switch to the authenticated stream. */
void tern__c2s_authenticated(struct tern_c2s *c);

/** Write one stanza now (SM counting and queueing happen in the caller). */
void tern__c2s_write_stanza(struct tern_c2s *c, struct tern_xml *stanza);
/** End the session for good: unbind, hand unacked stanzas on, free later. */
void tern__c2s_teardown(struct tern_c2s *c);
/** Close only the socket and drop the stream state; the session stays. */
void tern__c2s_drop_transport(struct tern_c2s *c);
/** Move the session state of old into c (resumption); old is torn down. */
void tern__c2s_adopt(struct tern_c2s *c, struct tern_c2s *old);

/* smacks.c: XEP-0198 */
/** Handle an element in the urn:xmpp:sm:3 namespace. */
void tern__sm_handle(struct tern_c2s *c, struct tern_xml *el);
/** A stanza from the client was handled: count it. */
void tern__sm_count_in(struct tern_c2s *c);
/** Send (or, hibernating, only queue) a stanza; takes the reference. */
void tern__sm_send_take(struct tern_c2s *c, struct tern_xml *stanza);
/** The transport died: hibernate if resumable (returns 1), else 0. */
int tern__sm_hibernate(struct tern_c2s *c);
/** The session ends: hand every unacked stanza on (offline, other resources, bounces). */
void tern__sm_handoff(struct tern_c2s *c);
/** Release SM state (queue, timer, id registration). */
void tern__sm_release(struct tern_c2s *c);
/** After adoption: the resumption id names c now. */
void tern__sm_rebind_id(struct tern_c2s *c);
/** The <sm/> stream feature, if enabled. */
void tern__sm_features(struct tern_c2s *c, struct tern_buf *out);

/* csi.c: XEP-0352 */
/** Handle <active/> / <inactive/>. */
void tern__csi_handle(struct tern_c2s *c, struct tern_xml *el);
/** Deliver or hold a stanza (takes the reference). */
void tern__csi_send_take(struct tern_c2s *c, struct tern_xml *stanza);
/** Send everything held. */
void tern__csi_flush(struct tern_c2s *c);
/** Drop everything held (session end after flush attempts). */
void tern__csi_release(struct tern_c2s *c);

/** Handle an element in the SASL namespace before authentication (sasl.c). */
void tern__sasl_handle(struct tern_c2s *c, struct tern_xml *el);
/** The <mechanisms/> feature for this connection's state into out (sasl.c). */
void tern__sasl_features(struct tern_c2s *c, struct tern_buf *out);
/** Release SASL state (sasl.c). */
void tern__sasl_reset(struct tern_c2s *c);

#endif
