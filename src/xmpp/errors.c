#include "xmpp/errors.h"

static const char *const stream_names[] = {
    [TERN_SE_NONE] = "undefined-condition",
    [TERN_SE_BAD_FORMAT] = "bad-format",
    [TERN_SE_BAD_NAMESPACE_PREFIX] = "bad-namespace-prefix",
    [TERN_SE_CONFLICT] = "conflict",
    [TERN_SE_CONNECTION_TIMEOUT] = "connection-timeout",
    [TERN_SE_HOST_GONE] = "host-gone",
    [TERN_SE_HOST_UNKNOWN] = "host-unknown",
    [TERN_SE_IMPROPER_ADDRESSING] = "improper-addressing",
    [TERN_SE_INTERNAL_SERVER_ERROR] = "internal-server-error",
    [TERN_SE_INVALID_FROM] = "invalid-from",
    [TERN_SE_INVALID_NAMESPACE] = "invalid-namespace",
    [TERN_SE_INVALID_XML] = "invalid-xml",
    [TERN_SE_NOT_AUTHORIZED] = "not-authorized",
    [TERN_SE_NOT_WELL_FORMED] = "not-well-formed",
    [TERN_SE_POLICY_VIOLATION] = "policy-violation",
    [TERN_SE_REMOTE_CONNECTION_FAILED] = "remote-connection-failed",
    [TERN_SE_RESET] = "reset",
    [TERN_SE_RESOURCE_CONSTRAINT] = "resource-constraint",
    [TERN_SE_RESTRICTED_XML] = "restricted-xml",
    [TERN_SE_SEE_OTHER_HOST] = "see-other-host",
    [TERN_SE_SYSTEM_SHUTDOWN] = "system-shutdown",
    [TERN_SE_UNDEFINED_CONDITION] = "undefined-condition",
    [TERN_SE_UNSUPPORTED_ENCODING] = "unsupported-encoding",
    [TERN_SE_UNSUPPORTED_FEATURE] = "unsupported-feature",
    [TERN_SE_UNSUPPORTED_STANZA_TYPE] = "unsupported-stanza-type",
    [TERN_SE_UNSUPPORTED_VERSION] = "unsupported-version",
};

const char *tern_stream_error_name(enum tern_stream_error cond) {
    if ((unsigned)cond >= sizeof stream_names / sizeof stream_names[0])
        return "undefined-condition";
    return stream_names[cond];
}

const char *tern_error_type_name(enum tern_error_type type) {
    switch (type) {
    case TERN_ET_AUTH: return "auth";
    case TERN_ET_CANCEL: return "cancel";
    case TERN_ET_CONTINUE: return "continue";
    case TERN_ET_MODIFY: return "modify";
    case TERN_ET_WAIT: return "wait";
    }
    return "cancel";
}

static const char *const stanza_names[] = {
    [TERN_SC_BAD_REQUEST] = "bad-request",
    [TERN_SC_CONFLICT] = "conflict",
    [TERN_SC_FEATURE_NOT_IMPLEMENTED] = "feature-not-implemented",
    [TERN_SC_FORBIDDEN] = "forbidden",
    [TERN_SC_GONE] = "gone",
    [TERN_SC_INTERNAL_SERVER_ERROR] = "internal-server-error",
    [TERN_SC_ITEM_NOT_FOUND] = "item-not-found",
    [TERN_SC_JID_MALFORMED] = "jid-malformed",
    [TERN_SC_NOT_ACCEPTABLE] = "not-acceptable",
    [TERN_SC_NOT_ALLOWED] = "not-allowed",
    [TERN_SC_NOT_AUTHORIZED] = "not-authorized",
    [TERN_SC_POLICY_VIOLATION] = "policy-violation",
    [TERN_SC_RECIPIENT_UNAVAILABLE] = "recipient-unavailable",
    [TERN_SC_REDIRECT] = "redirect",
    [TERN_SC_REGISTRATION_REQUIRED] = "registration-required",
    [TERN_SC_REMOTE_SERVER_NOT_FOUND] = "remote-server-not-found",
    [TERN_SC_REMOTE_SERVER_TIMEOUT] = "remote-server-timeout",
    [TERN_SC_RESOURCE_CONSTRAINT] = "resource-constraint",
    [TERN_SC_SERVICE_UNAVAILABLE] = "service-unavailable",
    [TERN_SC_SUBSCRIPTION_REQUIRED] = "subscription-required",
    [TERN_SC_UNDEFINED_CONDITION] = "undefined-condition",
    [TERN_SC_UNEXPECTED_REQUEST] = "unexpected-request",
};

const char *tern_stanza_cond_name(enum tern_stanza_cond cond) {
    if ((unsigned)cond >= sizeof stanza_names / sizeof stanza_names[0])
        return "undefined-condition";
    return stanza_names[cond];
}
