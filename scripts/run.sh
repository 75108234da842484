#!/bin/sh
# Start ternd in the foreground on the development config, after saying how to use it.
set -eu
BUILD="$1"
CONFIG="$2"
"$BUILD/ternd" --check-config -c "$CONFIG" >/dev/null
cat <<MSG

  Tern is starting with $CONFIG (domain localhost, data in var/).
  Create the first account from another terminal:

      printf 'a-password\n' | $BUILD/ternctl -c $CONFIG adduser alice

  Then log in with any XMPP client as alice@localhost, server 127.0.0.1,
  port 5222 (STARTTLS) or 5223 (direct TLS). The certificate is self-signed
  (var/localhost.crt): accept it in the client.
  Stop the server with Ctrl-C.

MSG
exec "$BUILD/ternd" -c "$CONFIG"
