/* Error codes shared by every Tern module. */
#ifndef TERN_CORE_ERR_H
#define TERN_CORE_ERR_H

/**
 * Return values of Tern functions: 0 is success, a negative value is one of
 * these. XMPP error conditions are not return codes; they are data
 * (see src/xmpp/errors.h).
 */
enum tern_err {
    TERN_OK = 0,
    TERN_E_NOMEM = -1,    /* allocation failed (most callers abort instead) */
    TERN_E_INVAL = -2,    /* malformed input or bad argument */
    TERN_E_LIMIT = -3,    /* a configured ceiling would be exceeded */
    TERN_E_IO = -4,       /* socket, file or database I/O failed */
    TERN_E_NOTFOUND = -5, /* the named object does not exist */
    TERN_E_EXISTS = -6,   /* the object to create exists already */
    TERN_E_AUTH = -7,     /* authentication failed */
    TERN_E_TLS = -8,      /* TLS layer failure */
    TERN_E_CLOSED = -9,   /* the object is closing or closed */
    TERN_E_BUSY = -10,    /* try again later (locked, queue full) */
};

/** A short, static English description of an error code. */
const char *tern_strerror(int err);

#endif
