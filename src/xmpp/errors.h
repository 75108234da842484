/* XMPP stream and stanza error conditions as data (RFC 6120 §4.9, §8.3). */
#ifndef TERN_XMPP_ERRORS_H
#define TERN_XMPP_ERRORS_H

#define TERN_NS_STREAMS       "http://etherx.jabber.org/streams"
#define TERN_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define TERN_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define TERN_NS_CLIENT        "jabber:client"
#define TERN_NS_SERVER        "jabber:server"
#define TERN_NS_COMPONENT     "jabber:component:accept"
#define TERN_NS_TLS           "urn:ietf:params:xml:ns:xmpp-tls"
#define TERN_NS_SASL          "urn:ietf:params:xml:ns:xmpp-sasl"
#define TERN_NS_BIND          "urn:ietf:params:xml:ns:xmpp-bind"
#define TERN_NS_SESSION       "urn:ietf:params:xml:ns:xmpp-session"
#define TERN_NS_PING          "urn:xmpp:ping"
#define TERN_NS_SASL_CB       "urn:xmpp:sasl-cb:0"

/** RFC 6120 §4.9.3 stream error conditions. */
enum tern_stream_error {
    TERN_SE_NONE = 0,
    TERN_SE_BAD_FORMAT,
    TERN_SE_BAD_NAMESPACE_PREFIX,
    TERN_SE_CONFLICT,
    TERN_SE_CONNECTION_TIMEOUT,
    TERN_SE_HOST_GONE,
    TERN_SE_HOST_UNKNOWN,
    TERN_SE_IMPROPER_ADDRESSING,
    TERN_SE_INTERNAL_SERVER_ERROR,
    TERN_SE_INVALID_FROM,
    TERN_SE_INVALID_NAMESPACE,
    TERN_SE_INVALID_XML,
    TERN_SE_NOT_AUTHORIZED,
    TERN_SE_NOT_WELL_FORMED,
    TERN_SE_POLICY_VIOLATION,
    TERN_SE_REMOTE_CONNECTION_FAILED,
    TERN_SE_RESET,
    TERN_SE_RESOURCE_CONSTRAINT,
    TERN_SE_RESTRICTED_XML,
    TERN_SE_SEE_OTHER_HOST,
    TERN_SE_SYSTEM_SHUTDOWN,
    TERN_SE_UNDEFINED_CONDITION,
    TERN_SE_UNSUPPORTED_ENCODING,
    TERN_SE_UNSUPPORTED_FEATURE,
    TERN_SE_UNSUPPORTED_STANZA_TYPE,
    TERN_SE_UNSUPPORTED_VERSION,
};

/** The element name of a stream error condition, e.g. "restricted-xml". */
const char *tern_stream_error_name(enum tern_stream_error cond);

/** RFC 6120 §8.3.2 error types. */
enum tern_error_type {
    TERN_ET_AUTH,
    TERN_ET_CANCEL,
    TERN_ET_CONTINUE,
    TERN_ET_MODIFY,
    TERN_ET_WAIT,
};

/** RFC 6120 §8.3.3 stanza error conditions. */
enum tern_stanza_cond {
    TERN_SC_BAD_REQUEST,
    TERN_SC_CONFLICT,
    TERN_SC_FEATURE_NOT_IMPLEMENTED,
    TERN_SC_FORBIDDEN,
    TERN_SC_GONE,
    TERN_SC_INTERNAL_SERVER_ERROR,
    TERN_SC_ITEM_NOT_FOUND,
    TERN_SC_JID_MALFORMED,
    TERN_SC_NOT_ACCEPTABLE,
    TERN_SC_NOT_ALLOWED,
    TERN_SC_NOT_AUTHORIZED,
    TERN_SC_POLICY_VIOLATION,
    TERN_SC_RECIPIENT_UNAVAILABLE,
    TERN_SC_REDIRECT,
    TERN_SC_REGISTRATION_REQUIRED,
    TERN_SC_REMOTE_SERVER_NOT_FOUND,
    TERN_SC_REMOTE_SERVER_TIMEOUT,
    TERN_SC_RESOURCE_CONSTRAINT,
    TERN_SC_SERVICE_UNAVAILABLE,
    TERN_SC_SUBSCRIPTION_REQUIRED,
    TERN_SC_UNDEFINED_CONDITION,
    TERN_SC_UNEXPECTED_REQUEST,
};

/** A stanza error: data, not a return code (STYLE.md §3). */
struct tern_stanza_error {
    enum tern_error_type type;  /* cancel, modify, wait ... */
    enum tern_stanza_cond cond; /* the defined condition */
    const char *text;           /* optional human-readable text (static or NULL) */
};

const char *tern_error_type_name(enum tern_error_type type);
const char *tern_stanza_cond_name(enum tern_stanza_cond cond);

#endif
