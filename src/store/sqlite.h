/* The SQLite storage backend (internal to src/store; use tern_store_backend_open). */
#ifndef TERN_STORE_SQLITE_H
#define TERN_STORE_SQLITE_H

#include <stddef.h>

struct tern_store_backend;

/** Schema version this code creates and understands (the highest migration). */
#define TERN__SQLITE_SCHEMA_VERSION 5

/**
 * Open (creating if needed) the database file at path, after creating
 * data_dir and the file's parent directory (mode 0700) when missing. Sets WAL,
 * synchronous=FULL, foreign keys and a 5 s busy timeout, then applies any
 * missing schema migration. On failure returns TERN_E_IO (or TERN_E_BUSY,
 * TERN_E_INVAL for a schema newer than this code) and writes a message that
 * names path into err; *out is left NULL.
 */
int tern__sqlite_open(const char *path, const char *data_dir, struct tern_store_backend **out,
                      char *err, size_t errlen);

#endif
