/* The c2s connection struct, shared by c2s.c (streams, bind) and sasl.c. */
#ifndef TERN_SERVER_C2S_INTERNAL_H
#define TERN_SERVER_C2S_INTERNAL_H

#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "server/c2s.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"

struct tern_tls;
struct tern_xml_parser;
struct tern_xml;

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
    uv_tcp_t tcp;                 /* the socket; tcp.data points back here */
    uv_timer_t timer;             /* pre-auth timeout, then close deadline */
    struct tern_shard *shard;     /* owning shard */
    struct tern_c2s *prev, *next; /* shard's connection list */
    int refs;                     /* handles open + async operations pending; freed at 0 */

    char ip[46];    /* peer address, for limits and logs */
    char peer[56];  /* "ip:port" or "[ip]:port", for logs */
    int ip_counted; /* ip holds a slot in iplimits */

    struct tern_tls *tls; /* NULL until TLS starts */
    int direct_tls;       /* came in on the XEP-0368 port */
    struct tern_buf out;  /* bytes to write (ciphertext once TLS runs) */
    size_t queued;        /* bytes handed to uv_write and not yet written */
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
};

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

/** Handle an element in the SASL namespace before authentication (sasl.c). */
void tern__sasl_handle(struct tern_c2s *c, struct tern_xml *el);
/** The <mechanisms/> feature for this connection's state into out (sasl.c). */
void tern__sasl_features(struct tern_c2s *c, struct tern_buf *out);
/** Release SASL state (sasl.c). */
void tern__sasl_reset(struct tern_c2s *c);

#endif
