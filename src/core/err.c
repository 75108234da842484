#include "core/err.h"

const char *tern_strerror(int err) {
    switch (err) {
    case TERN_OK: return "success";
    case TERN_E_NOMEM: return "out of memory";
    case TERN_E_INVAL: return "invalid argument or input";
    case TERN_E_LIMIT: return "limit exceeded";
    case TERN_E_IO: return "input/output error";
    case TERN_E_NOTFOUND: return "not found";
    case TERN_E_EXISTS: return "already exists";
    case TERN_E_AUTH: return "authentication failed";
    case TERN_E_TLS: return "TLS error";
    case TERN_E_CLOSED: return "closed";
    case TERN_E_BUSY: return "busy";
    }
    return "unknown error";
}
