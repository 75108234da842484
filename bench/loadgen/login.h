/*
 * Internal interface between the transport (conn.c) and the XMPP side
 * (login.c) of a benchmark connection.
 */
#ifndef TERN_BENCH_LOGIN_H
#define TERN_BENCH_LOGIN_H

#include <stddef.h>

#include "conn.h"

/** TCP is up: open the stream (or start TLS at once for direct TLS). */
void tern_bench__login_connected(struct tern_bench_conn *c);

/** The TLS handshake finished: open the stream inside TLS. */
void tern_bench__login_tls_up(struct tern_bench_conn *c);

/** Plaintext XML from the server. */
void tern_bench__login_feed(struct tern_bench_conn *c, const char *data, size_t len);

/** Begin TLS on c (conn.c). Returns 0, or -1 after closing c. */
int tern_bench__conn_start_tls(struct tern_bench_conn *c);

#endif
