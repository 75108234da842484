"""Black-box integration harness for ternd.

Everything here talks to a real `ternd` over real sockets on 127.0.0.1:

* TernServer   - starts/stops one ternd with a generated config in a temp dir.
* RawStream    - a byte-level XMPP client (plain socket + ssl) that lets a test
                 send anything and assert on exactly what came back.
* ScramClient  - our own SCRAM-SHA-1/-256(-PLUS) client (hashlib/hmac).
* SlixClient   - a slixmpp 1.8.3 ClientXMPP wrapped with timeouts, recording
                 what happened (session_start, failed_auth, stream_error ...).
* TernTestCase - unittest base class: one server per test class.

Only the standard library and slixmpp are used.  Run with /usr/bin/python3.
"""

import asyncio
import atexit
import base64
import codecs
import collections
import ctypes
import ctypes.util
import hashlib
import hmac
import itertools
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILD = Path(os.environ.get('TERN_BUILD') or (REPO / 'build'))
TERND = BUILD / 'ternd'
TERNCTL = BUILD / 'ternctl'

# Default timeout (seconds) of every single wait in the harness.
TIMEOUT = float(os.environ.get('TERN_TEST_TIMEOUT', '10'))

NS_STREAM = 'http://etherx.jabber.org/streams'
NS_CLIENT = 'jabber:client'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'
NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'
NS_PING = 'urn:xmpp:ping'


def q(ns, local):
    """Clark notation: q(NS_SASL, 'auth') -> '{urn:...}auth'."""
    return '{%s}%s' % (ns, local)


def local_name(tag):
    return tag.rsplit('}', 1)[-1]


def free_port():
    """A currently free TCP port on 127.0.0.1 (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def loopback_alias_usable(ip):
    """True if we can use `ip` (e.g. 127.0.0.2) as a source address."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


def wait_until(predicate, timeout=TIMEOUT, interval=0.02, what='condition'):
    """Poll predicate() until it returns a truthy value; raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# Config file generation
# --------------------------------------------------------------------------

def deep_merge(base, overrides):
    """Recursively merge overrides into a copy of base; a None value deletes."""
    out = dict(base)
    for k, v in (overrides or {}).items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


_PLAIN_SCALAR = re.compile(r'^[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*$')
_YAML_SPECIAL = {'true', 'false', 'yes', 'no', 'on', 'off', 'null', '~', 'y', 'n'}


def yaml_scalar(v):
    if v is True:
        return 'true'
    if v is False:
        return 'false'
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN_SCALAR.match(s) and s.lower() not in _YAML_SPECIAL and not s.endswith(':'):
        return s
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def to_yaml(d, indent=0):
    """Block-style YAML for nested dicts of scalars (enough for ternd configs)."""
    lines = []
    pad = '  ' * indent
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append('%s%s:' % (pad, k))
            lines.append(to_yaml(v, indent + 1))
        elif isinstance(v, (list, tuple)):
            lines.append('%s%s:' % (pad, k))
            for item in v:
                lines.append('%s  - %s' % (pad, yaml_scalar(item)))
        else:
            lines.append('%s%s: %s' % (pad, k, yaml_scalar(v)))
    return '\n'.join(line for line in lines if line != '')


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------

class ServerStartError(RuntimeError):
    pass


# Every TernServer ever started in this process, in start order (run.py uses
# this to print the log tail of the servers involved in a failed test).
SERVER_HISTORY = []
_LIVE = set()


def _kill_leftovers():
    for srv in list(_LIVE):
        try:
            srv.proc.kill()
            srv.proc.wait(timeout=5)
        except Exception:
            pass


atexit.register(_kill_leftovers)

_libc = None


def _pdeathsig():
    """preexec_fn: ternd gets SIGKILL if the test runner dies (Linux only)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def require_binaries():
    missing = [str(p) for p in (TERND, TERNCTL) if not os.access(p, os.X_OK)]
    if missing:
        raise ServerStartError('not built / not executable: %s (set TERN_BUILD)' % ', '.join(missing))


class TernServer:
    """One ternd process.

    with TernServer({'auth': {'max_failures': 3}}) as srv:
        srv.adduser('alice', 'pw')
        RawStream(srv.c2s_port) ...
    """

    def __init__(self, overrides=None, name='ternd', start_timeout=20.0):
        self.overrides = overrides or {}
        self.name = name
        self.start_timeout = start_timeout
        self.proc = None
        self.returncode = None
        self.tmpdir = None
        self._log_cache = None
        self.started_at = None
        self.stopped_at = None

    # -- config -----------------------------------------------------------
    def build_config(self):
        base = {
            'domain': 'localhost',
            'data_dir': str(self.data_dir),
            'log': {'level': 'debug'},
            'c2s': {'address': '127.0.0.1', 'port': self.c2s_port},
            'c2s_tls': {'address': '127.0.0.1', 'port': self.c2s_tls_port},
            'storage': {'backend': 'sqlite', 'path': str(self.data_dir / 'tern.db')},
            'auth': {'scram_iterations': 4096},
        }
        return deep_merge(base, self.overrides)

    @property
    def domain(self):
        return self.config.get('domain', 'localhost')

    def jid(self, user):
        return '%s@%s' % (user, self.domain)

    # -- lifecycle --------------------------------------------------------
    def start(self):
        require_binaries()
        self.tmpdir = Path(tempfile.mkdtemp(prefix='tern-it-'))
        self.data_dir = self.tmpdir / 'data'
        self.data_dir.mkdir()
        self.c2s_port = free_port()
        self.c2s_tls_port = free_port()
        while self.c2s_tls_port == self.c2s_port:
            self.c2s_tls_port = free_port()
        self.config = self.build_config()
        self.config_path = self.tmpdir / 'tern.yaml'
        self.config_path.write_text(to_yaml(self.config) + '\n')
        self.log_path = self.tmpdir / 'ternd.log'
        self._logf = open(self.log_path, 'wb')
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [str(TERND), '-c', str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            cwd=str(self.tmpdir), env=env, start_new_session=True,
            preexec_fn=_pdeathsig)
        self.started_at = time.monotonic()
        SERVER_HISTORY.append(self)
        _LIVE.add(self)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if 'ready:' in self.log_text():
                return self
            rc = self.proc.poll()
            if rc is not None:
                self._reap(rc)
                raise ServerStartError('ternd exited with status %s before "ready:"\n--- log ---\n%s'
                                       % (rc, self.log_tail()))
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError('ternd did not log "ready:" within %.0fs\n--- log ---\n%s'
                                       % (self.start_timeout, self.log_tail()))
            time.sleep(0.02)

    def restart(self, timeout=TIMEOUT):
        """Stop ternd (SIGTERM, as stop()) and start it again with the same
        config file, data dir and ports; the log file is appended to.
        Returns the exit status of the stopped process."""
        rc = self.stop(timeout)
        self._log_cache = None
        self.returncode = None
        self.stopped_at = None
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._logf = open(self.log_path, 'ab')
        self._logf.write(b'\n[harness] restart (previous exit status %s)\n' % str(rc).encode())
        self._logf.flush()
        self.proc = subprocess.Popen(
            [str(TERND), '-c', str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            cwd=str(self.tmpdir), env=dict(os.environ), start_new_session=True,
            preexec_fn=_pdeathsig)
        self.started_at = time.monotonic()
        _LIVE.add(self)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if b'ready:' in self.log_path.read_bytes()[offset:]:
                return rc
            code = self.proc.poll()
            if code is not None:
                self._reap(code)
                raise ServerStartError('ternd exited with status %s before "ready:" on restart\n'
                                       '--- log ---\n%s' % (code, self.log_tail()))
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError('ternd did not log "ready:" within %.0fs of a restart\n'
                                       '--- log ---\n%s' % (self.start_timeout, self.log_tail()))
            time.sleep(0.02)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        """Wait for the process to exit by itself; returns the exit status."""
        rc = self.proc.wait(timeout=timeout)
        self._reap(rc)
        return rc

    def stop(self, timeout=TIMEOUT):
        """SIGTERM, wait up to timeout, then SIGKILL.  Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait(timeout=timeout)
                with open(self.log_path, 'ab') as f:
                    f.write(b'\n[harness] ternd did not exit %.0fs after SIGTERM: SIGKILLed\n' % timeout)
        else:
            rc = self.proc.returncode
        self._reap(rc)
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self._reap(self.proc.wait(timeout=TIMEOUT))

    def _reap(self, rc):
        self.returncode = rc
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        _LIVE.discard(self)
        try:
            self._logf.close()
        except Exception:
            pass

    def cleanup(self):
        """Stop (if needed) and remove the temp dir (keeps the log in memory)."""
        self.stop()
        if self.tmpdir and self.tmpdir.exists():
            self._log_cache = self.log_text()
            if not os.environ.get('TERN_KEEP_TMP'):
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- log --------------------------------------------------------------
    def log_text(self):
        if self._log_cache is not None:
            return self._log_cache
        try:
            return self.log_path.read_bytes().decode('utf-8', 'replace')
        except (OSError, AttributeError):
            return ''

    def log_tail(self, lines=40):
        return '\n'.join(self.log_text().splitlines()[-lines:])

    # -- ternctl ----------------------------------------------------------
    def ternctl(self, *args, input=None, timeout=TIMEOUT, config=True):
        """Run ternctl -c CONFIG ARGS...; returns CompletedProcess (text)."""
        cmd = [str(TERNCTL)]
        if config:
            cmd += ['-c', str(self.config_path)]
        cmd += [str(a) for a in args]
        kw = {}
        if input is None:
            kw['stdin'] = subprocess.DEVNULL
        else:
            kw['input'] = input
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=str(self.tmpdir), **kw)

    def adduser(self, user, password):
        r = self.ternctl('adduser', user, input=password + '\n')
        if r.returncode != 0:
            raise AssertionError('ternctl adduser %s failed (%d): %s%s'
                                 % (user, r.returncode, r.stdout, r.stderr))
        return r


def check_config(path, timeout=TIMEOUT):
    require_binaries()
    return subprocess.run([str(TERND), '--check-config', '-c', str(path)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# SCRAM (RFC 5802 / RFC 7677) and channel bindings
# --------------------------------------------------------------------------

def saslname(s):
    return s.replace('=', '=3D').replace(',', '=2C')


class ScramError(Exception):
    pass


class ScramClient:
    """Client side of SCRAM-SHA-1 / SCRAM-SHA-256, optionally -PLUS.

    cb_type: None (gs2 flag 'n', or gs2_flag if given) or a channel binding
             type name; cb_data is then the channel binding data (bytes).
    """

    HASHES = {'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512'}

    def __init__(self, hash_name, username, password, *, cb_type=None, cb_data=b'',
                 gs2_flag=None, nonce=None, authzid=None):
        if hash_name not in self.HASHES:
            raise ValueError(hash_name)
        self.hash = self.HASHES[hash_name]
        self.username = username
        self.password = password
        self.cb_type = cb_type
        self.cb_data = cb_data or b''
        if cb_type:
            flag = 'p=' + cb_type
        else:
            flag = gs2_flag or 'n'
        self.gs2_header = flag + ',' + (('a=' + saslname(authzid)) if authzid else '') + ','
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode().replace('=', '')
        self.client_first_bare = 'n=%s,r=%s' % (saslname(username), self.nonce)
        self.server_signature = None
        self.server_first = None
        self.server_error = None
        self.iterations = None
        self.salt = None

    @classmethod
    def for_mechanism(cls, mech, username, password, **kw):
        m = re.fullmatch(r'SCRAM-(SHA-\d+)(-PLUS)?', mech)
        if not m:
            raise ValueError(mech)
        return cls(m.group(1), username, password, **kw)

    def client_first(self):
        return (self.gs2_header + self.client_first_bare).encode()

    def _h(self, data):
        return hashlib.new(self.hash, data).digest()

    def _hmac(self, key, data):
        return hmac.new(key, data, self.hash).digest()

    @staticmethod
    def parse(msg):
        out = {}
        for item in msg.split(','):
            if '=' not in item:
                raise ScramError('bad SCRAM attribute %r in %r' % (item, msg))
            k, v = item.split('=', 1)
            out[k] = v
        return out

    def client_final(self, server_first):
        if isinstance(server_first, bytes):
            server_first = server_first.decode()
        self.server_first = server_first
        attrs = self.parse(server_first)
        if 'm' in attrs:
            raise ScramError('server used reserved m= attribute')
        if 'e' in attrs:
            raise ScramError('server error: %s' % attrs['e'])
        r, s, i = attrs.get('r'), attrs.get('s'), attrs.get('i')
        if r is None or s is None or i is None:
            raise ScramError('server-first-message lacks r/s/i: %r' % server_first)
        if not r.startswith(self.nonce) or len(r) <= len(self.nonce):
            raise ScramError('server nonce %r does not extend ours %r' % (r, self.nonce))
        self.salt = base64.b64decode(s, validate=True)
        self.iterations = int(i)
        if self.iterations < 1:
            raise ScramError('bad iteration count %r' % i)
        cbind_input = self.gs2_header.encode() + (self.cb_data if self.cb_type else b'')
        without_proof = 'c=%s,r=%s' % (base64.b64encode(cbind_input).decode(), r)
        salted = hashlib.pbkdf2_hmac(self.hash, self.password.encode('utf-8'), self.salt, self.iterations)
        client_key = self._hmac(salted, b'Client Key')
        stored_key = self._h(client_key)
        auth_message = ','.join([self.client_first_bare, server_first, without_proof]).encode()
        client_signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature))
        server_key = self._hmac(salted, b'Server Key')
        self.server_signature = self._hmac(server_key, auth_message)
        return (without_proof + ',p=' + base64.b64encode(proof).decode()).encode()

    def verify_server_final(self, server_final):
        """True if server-final carries the right v=; records e= errors."""
        if isinstance(server_final, bytes):
            server_final = server_final.decode()
        attrs = self.parse(server_final)
        if 'e' in attrs:
            self.server_error = attrs['e']
            return False
        v = attrs.get('v')
        if v is None:
            return False
        return hmac.compare_digest(base64.b64decode(v), self.server_signature)


# OIDs of certificate signature algorithms -> hash for tls-server-end-point
# (RFC 5929 section 4.1: MD5 and SHA-1 are replaced by SHA-256).
_SIG_OID_HASH = {
    '1.2.840.113549.1.1.4': 'sha256',    # md5WithRSAEncryption
    '1.2.840.113549.1.1.5': 'sha256',    # sha1WithRSAEncryption
    '1.2.840.113549.1.1.11': 'sha256',   # sha256WithRSAEncryption
    '1.2.840.113549.1.1.12': 'sha384',
    '1.2.840.113549.1.1.13': 'sha512',
    '1.2.840.113549.1.1.14': 'sha224',
    '1.2.840.10045.4.1': 'sha256',       # ecdsa-with-SHA1
    '1.2.840.10045.4.3.1': 'sha224',
    '1.2.840.10045.4.3.2': 'sha256',     # ecdsa-with-SHA256
    '1.2.840.10045.4.3.3': 'sha384',
    '1.2.840.10045.4.3.4': 'sha512',
}


def _der_read(buf, pos):
    """One DER TLV at pos -> (tag, content_start, content_end)."""
    tag = buf[pos]
    pos += 1
    length = buf[pos]
    pos += 1
    if length & 0x80:
        n = length & 0x7f
        if n == 0 or n > 4:
            raise ValueError('unsupported DER length')
        length = int.from_bytes(buf[pos:pos + n], 'big')
        pos += n
    if pos + length > len(buf):
        raise ValueError('truncated DER')
    return tag, pos, pos + length


def _oid_str(b):
    first = b[0]
    parts = [first // 40, first % 40] if first < 80 else [2, first - 80]
    v = 0
    for byte in b[1:]:
        v = (v << 7) | (byte & 0x7f)
        if not byte & 0x80:
            parts.append(v)
            v = 0
    return '.'.join(map(str, parts))


def cert_signature_oid(der):
    tag, s, e = _der_read(der, 0)                    # Certificate
    if tag != 0x30:
        raise ValueError('not a certificate')
    _, _, tbs_end = _der_read(der, s)                # tbsCertificate
    tag, a, _ = _der_read(der, tbs_end)              # signatureAlgorithm
    if tag != 0x30:
        raise ValueError('no AlgorithmIdentifier')
    tag, o, oe = _der_read(der, a)
    if tag != 0x06:
        raise ValueError('no OID')
    return _oid_str(der[o:oe])


def tls_server_end_point(der):
    """RFC 5929 tls-server-end-point channel binding data for a DER cert."""
    oid = cert_signature_oid(der)
    h = _SIG_OID_HASH.get(oid)
    if h is None:
        raise ValueError('no tls-server-end-point hash defined for signature algorithm %s' % oid)
    return hashlib.new(h, der).digest()


# tls-exporter (RFC 9266) needs SSL_export_keying_material, which Python's ssl
# module does not expose; we reach the SSL* of an SSLSocket through ctypes.
# The layout used (CPython 3.x PySSLSocket: PyObject_HEAD, PyObject *Socket,
# SSL *ssl) is verified against SSL_get_version() before use.
_libssl = None


def _load_libssl():
    global _libssl
    if _libssl is None:
        lib = None
        for name in ('libssl.so.3', ctypes.util.find_library('ssl')):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            raise RuntimeError('libssl not found for tls-exporter')
        f = lib.SSL_export_keying_material
        f.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                      ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
        f.restype = ctypes.c_int
        g = lib.SSL_get_version
        g.argtypes = [ctypes.c_void_p]
        g.restype = ctypes.c_char_p
        _libssl = lib
    return _libssl


def tls_exporter(sslsock, length=32, label=b'EXPORTER-Channel-Binding'):
    """RFC 9266 tls-exporter channel binding data of an ssl.SSLSocket."""
    lib = _load_libssl()
    if 'OpenSSL 3' not in ssl.OPENSSL_VERSION:
        raise RuntimeError('tls-exporter helper needs OpenSSL 3 (have %s)' % ssl.OPENSSL_VERSION)
    obj = sslsock._sslobj
    ptr = ctypes.c_void_p.from_address(id(obj) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    if not ptr:
        raise RuntimeError('cannot locate SSL* of the socket')
    ver = lib.SSL_get_version(ptr)
    if ver is None or ver.decode() != sslsock.version():
        raise RuntimeError('SSL* lookup mismatch (%r vs %r)' % (ver, sslsock.version()))
    out = ctypes.create_string_buffer(length)
    if lib.SSL_export_keying_material(ptr, out, length, label, len(label), None, 0, 0) != 1:
        raise RuntimeError('SSL_export_keying_material failed')
    return out.raw


def client_ssl_context(min_version=None, max_version=None, seclevel0=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if seclevel0:
        ctx.set_ciphers('DEFAULT:@SECLEVEL=0')
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


# --------------------------------------------------------------------------
# Stream errors in raw text (tolerant of quotes, prefixes, attribute order)
# --------------------------------------------------------------------------

_ERR_RE = re.compile(r'<(?:([\w.-]+):)?error\b([^>]*)>(.*?)</(?:[\w.-]+:)?error\s*>', re.S)
_COND_RE = re.compile(r'<([A-Za-z][\w-]*)\b([^>]*?)\bxmlns\s*=\s*([\'"])urn:ietf:params:xml:ns:xmpp-streams\3')
_TEXT_RE = re.compile(r'<text\b[^>]*>(.*?)</text\s*>', re.S)
_STREAM_END_RE = re.compile(r'</(?:[\w.-]+:)?stream\s*>')


class StreamErrorInfo:
    def __init__(self, condition, text, error_xml, stream_closed_tag, start, end):
        self.condition = condition
        self.text = text
        self.error_xml = error_xml
        self.stream_closed_tag = stream_closed_tag
        self.start = start
        self.end = end

    def __repr__(self):
        return '<StreamError %s text=%r closed_tag=%s>' % (self.condition, self.text, self.stream_closed_tag)


def find_stream_error(text):
    """First stream-level error in text (an <error> carrying an element in the
    urn:ietf:params:xml:ns:xmpp-streams namespace), or None."""
    for m in _ERR_RE.finditer(text):
        inner = m.group(3)
        c = _COND_RE.search(inner)
        if not c or c.group(1) == 'text':
            # stanza errors use the -stanzas namespace; skip them
            conds = [x for x in _COND_RE.finditer(inner) if x.group(1) != 'text']
            if not conds:
                continue
            c = conds[0]
        t = _TEXT_RE.search(inner)
        closed = bool(_STREAM_END_RE.search(text, m.end()))
        return StreamErrorInfo(c.group(1), t.group(1) if t else None, m.group(0), closed,
                               m.start(), m.end())
    return None


# --------------------------------------------------------------------------
# RawStream
# --------------------------------------------------------------------------

class StreamClosed(Exception):
    pass


class RawStream:
    """Byte-level XMPP c2s client.

    All bytes received (after TLS decryption) are kept in .data / .text; the
    top-level elements of the current stream are also parsed and can be read
    with next_element().  The parser is reset at every new stream header we
    send (stream restart after STARTTLS / SASL).
    """

    def __init__(self, port, host='127.0.0.1', *, direct_tls=False, tls_min=None, tls_max=None,
                 server_name='localhost', source_ip=None, timeout=TIMEOUT, seclevel0=False):
        self.host = host
        self.port = port
        self.server_name = server_name
        self.timeout = timeout
        src = (source_ip, 0) if source_ip else None
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=src)
        self.data = bytearray()
        self._decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self.text = ''
        self._pos = 0                  # read_until cursor in self.text
        self.eof = False
        self.reset_by_peer = False
        self.send_error = None
        self.tls = False
        self.tls_version = None
        self.peer_cert = None
        self._parser = None
        self._depth = 0
        self._root = None
        self._elements = collections.deque()
        self.stream_header = None      # attrib of the server's current <stream:stream>
        self.stream_ended = False      # server sent </stream:stream>
        self.parse_error = None
        self.features = None
        self._ids = itertools.count(1)
        if direct_tls:
            try:
                self._wrap_tls(tls_min, tls_max, seclevel0)
            except BaseException:
                self.sock.close()
                raise

    # -- context manager --------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- TLS --------------------------------------------------------------
    def _wrap_tls(self, tls_min=None, tls_max=None, seclevel0=False):
        ctx = client_ssl_context(tls_min, tls_max, seclevel0)
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.server_name)
        self.tls = True
        self.tls_version = self.sock.version()
        self.peer_cert = self.sock.getpeercert(binary_form=True)

    def starttls(self, tls_min=None, tls_max=None, seclevel0=False):
        """<starttls/> -> <proceed/> -> TLS handshake.  Returns self."""
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        el = self.next_element()
        if el.tag != q(NS_TLS, 'proceed'):
            raise AssertionError('expected <proceed/>, got %s' % self.describe(el))
        self._parser = None
        self._wrap_tls(tls_min, tls_max, seclevel0)
        return self

    def channel_binding(self, cb_type):
        if cb_type == 'tls-server-end-point':
            return tls_server_end_point(self.peer_cert)
        if cb_type == 'tls-exporter':
            return tls_exporter(self.sock)
        if cb_type == 'tls-unique':
            return self.sock.get_channel_binding('tls-unique')
        raise ValueError(cb_type)

    # -- low level I/O ----------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
            # the server may close while we are still sending (e.g. limits);
            # whatever it sent before is still readable
            self.send_error = e
        return self

    def _recv(self, timeout):
        """Receive one chunk. Returns True if data arrived, False on timeout.
        Sets self.eof on EOF/reset."""
        if self.eof:
            return False
        pending = self.tls and self.sock.pending()
        if not pending:
            self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except ConnectionResetError:
            self.reset_by_peer = True
            self.eof = True
            return False
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            self.eof = True
            return False
        except ssl.SSLError as e:
            self.reset_by_peer = True
            self.eof = True
            self.tls_error = e
            return False
        except OSError as e:
            if e.errno in (104, 32):
                self.reset_by_peer = True
                self.eof = True
                return False
            raise
        if not chunk:
            self.eof = True
            return False
        self.data += chunk
        self.text += self._decoder.decode(chunk)
        self._feed(chunk)
        return True

    def _feed(self, chunk):
        if self.parse_error is not None:
            return
        if self._parser is None:
            self._new_parser()
        try:
            self._parser.feed(chunk)
            for ev, el in self._parser.read_events():
                if ev == 'start':
                    if self._depth == 0:
                        self._root = el
                        self.stream_header = dict(el.attrib)
                        self.stream_tag = el.tag
                    self._depth += 1
                elif ev == 'end':
                    self._depth -= 1
                    if self._depth == 0:
                        self.stream_ended = True
                    elif self._depth == 1:
                        self._elements.append(el)
                        try:
                            self._root.remove(el)
                        except ValueError:
                            pass
        except ET.ParseError as e:
            self.parse_error = e

    def _new_parser(self):
        self._parser = ET.XMLPullParser(events=('start', 'end'))
        self._depth = 0
        self._root = None
        self.stream_header = None
        self.stream_ended = False
        self.parse_error = None

    def reset_parser(self):
        self._parser = None
        self._elements.clear()
        self.parse_error = None
        self._depth = 0

    def read_until(self, regex, timeout=None):
        """Wait until regex matches the received text after the cursor;
        returns the match and moves the cursor past it."""
        timeout = self.timeout if timeout is None else timeout
        pat = re.compile(regex, re.S) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        while True:
            m = pat.search(self.text, self._pos)
            if m:
                self._pos = m.end()
                return m
            if self.eof:
                raise StreamClosed('connection closed before %r matched; received:\n%s'
                                   % (pat.pattern, self.text[-4000:]))
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no match for %r within %.1fs; received:\n%s'
                                   % (pat.pattern, timeout, self.text[-4000:]))
            self._recv(left)

    def read_until_closed(self, timeout=None):
        """Read until the server closes the connection.  Returns all text.
        Raises TimeoutError if the connection is still open after timeout."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('server did not close the connection within %.1fs; received:\n%s'
                                   % (timeout, self.text[-4000:]))
            self._recv(left)
        return self.text

    def wait_for_data(self, timeout):
        """Wait up to timeout for any data (or EOF); True if something came."""
        deadline = time.monotonic() + timeout
        n = len(self.data)
        while len(self.data) == n and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._recv(left)
        return True

    def next_element(self, timeout=None):
        """The next top-level element of the server's stream."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self._elements:
            if self.parse_error is not None:
                raise AssertionError('server sent XML we cannot parse (%s):\n%s'
                                     % (self.parse_error, self.text[-4000:]))
            if self.eof:
                raise StreamClosed('connection closed while waiting for an element; received:\n%s'
                                   % self.text[-4000:])
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no element within %.1fs; received:\n%s' % (timeout, self.text[-4000:]))
            self._recv(left)
        el = self._elements.popleft()
        if el.tag == q(NS_STREAM, 'error'):
            raise StreamErrorReceived(self, el)
        return el

    def describe(self, el):
        return ET.tostring(el, encoding='unicode')

    # -- stream -----------------------------------------------------------
    @staticmethod
    def header(to='localhost', version='1.0', ns=NS_CLIENT, stream_ns=NS_STREAM, lang='en',
               xml_decl=True, from_=None, extra=''):
        attrs = ["xmlns='%s'" % ns, "xmlns:stream='%s'" % stream_ns]
        if to is not None:
            attrs.append("to='%s'" % to)
        if from_ is not None:
            attrs.append("from='%s'" % from_)
        if version is not None:
            attrs.append("version='%s'" % version)
        if lang is not None:
            attrs.append("xml:lang='%s'" % lang)
        if extra:
            attrs.append(extra)
        return ("<?xml version='1.0'?>" if xml_decl else '') + '<stream:stream %s>' % ' '.join(attrs)

    def send_header(self, **kw):
        self.reset_parser()
        self.send(self.header(**kw))
        return self

    def open_stream(self, timeout=None, **kw):
        """Send a stream header; wait for the server's header and features."""
        self.send_header(**kw)
        el = self.next_element(timeout)
        if el.tag != q(NS_STREAM, 'features'):
            raise AssertionError('expected <stream:features>, got %s' % self.describe(el))
        self.features = el
        return el

    # -- feature helpers --------------------------------------------------
    @staticmethod
    def mechanisms(features):
        m = features.find(q(NS_SASL, 'mechanisms'))
        if m is None:
            return []
        return [x.text.strip() for x in m.findall(q(NS_SASL, 'mechanism')) if x.text]

    @staticmethod
    def cb_types(features):
        cb = features.find(q(NS_SASL_CB, 'sasl-channel-binding'))
        if cb is None:
            return []
        return [x.get('type') for x in cb.findall(q(NS_SASL_CB, 'channel-binding'))]

    # -- SASL -------------------------------------------------------------
    def sasl_auth(self, mech, initial=None, raw_initial=None):
        """Send <auth>; returns the server's answer element."""
        if raw_initial is not None:
            payload = raw_initial
        elif initial is None:
            payload = ''
        elif initial == b'':
            payload = '='
        else:
            payload = base64.b64encode(initial).decode()
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mech, payload))
        return self.next_element()

    def auth_plain(self, user, password, authzid=''):
        msg = ('%s\0%s\0%s' % (authzid, user, password)).encode('utf-8')
        return self.sasl_auth('PLAIN', msg)

    def auth_scram(self, user, password, mech='SCRAM-SHA-256', cb_type=None, cb_data=None,
                   gs2_flag=None):
        """Full SCRAM exchange.  Returns (result_element, ScramClient).

        For -PLUS mechanisms cb_type defaults to tls-server-end-point and
        cb_data to the value computed from this connection.  The server's
        signature is verified on success (AssertionError if wrong)."""
        plus = mech.endswith('-PLUS')
        if plus and cb_type is None:
            cb_type = 'tls-server-end-point'
        if cb_type and cb_data is None:
            cb_data = self.channel_binding(cb_type)
        sc = ScramClient.for_mechanism(mech, user, password, cb_type=cb_type if (plus or cb_type) else None,
                                       cb_data=cb_data or b'', gs2_flag=gs2_flag)
        el = self.sasl_auth(mech, sc.client_first())
        if el.tag != q(NS_SASL, 'challenge'):
            return el, sc
        server_first = base64.b64decode(el.text or '')
        self.send("<response xmlns='%s'>%s</response>"
                  % (NS_SASL, base64.b64encode(sc.client_final(server_first)).decode()))
        el = self.next_element()
        if el.tag == q(NS_SASL, 'challenge'):
            # server-final as a challenge (allowed by RFC 6120): verify, ack
            final = base64.b64decode(el.text or '')
            if not sc.verify_server_final(final):
                raise AssertionError('bad SCRAM server signature in challenge: %r' % final)
            self.send("<response xmlns='%s'/>" % NS_SASL)
            el = self.next_element()
        elif el.tag == q(NS_SASL, 'success'):
            final = base64.b64decode(el.text or '')
            if not final:
                raise AssertionError('SCRAM <success/> without server-final-message')
            if not sc.verify_server_final(final):
                raise AssertionError('bad SCRAM server signature: %r' % final)
        return el, sc

    @staticmethod
    def sasl_condition(el):
        """'success', or the failure condition name."""
        if el.tag == q(NS_SASL, 'success'):
            return 'success'
        if el.tag == q(NS_SASL, 'failure'):
            for c in el:
                if c.tag != q(NS_SASL, 'text'):
                    return local_name(c.tag)
            return 'failure-without-condition'
        return 'unexpected:' + el.tag

    # -- login ------------------------------------------------------------
    def authenticate(self, user, password, mech='SCRAM-SHA-256', **kw):
        """Open stream (STARTTLS unless already TLS) and do SASL.
        Returns the SASL result element (does not assert success)."""
        self.open_stream()
        if not self.tls:
            self.starttls()
            self.open_stream()
        if mech == 'PLAIN':
            return self.auth_plain(user, password)
        el, _ = self.auth_scram(user, password, mech, **kw)
        return el

    def login(self, user, password, mech='SCRAM-SHA-256', resource=None, bind=True, **kw):
        """Authenticate (asserting success), restart the stream and bind.
        Returns the bound full JID (or the post-auth features if bind=False)."""
        el = self.authenticate(user, password, mech, **kw)
        cond = self.sasl_condition(el)
        if cond != 'success':
            raise AssertionError('login of %s with %s failed: %s' % (user, mech, self.describe(el)))
        feats = self.open_stream()
        if not bind:
            return feats
        return self.bind(resource)

    # -- post-auth --------------------------------------------------------
    def new_id(self):
        return 'it%d' % next(self._ids)

    def iq(self, type_, payload='', to=None, id_=None, timeout=None):
        """Send an iq and return the reply with the same id (other stanzas
        received meanwhile are kept in .skipped)."""
        id_ = id_ or self.new_id()
        to_attr = " to='%s'" % to if to else ''
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (type_, id_, to_attr, payload))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            el = self.next_element(max(0.0, deadline - time.monotonic()))
            if local_name(el.tag) == 'iq' and el.get('id') == id_:
                return el
            self.skipped = getattr(self, 'skipped', []) + [el]

    def bind(self, resource=None):
        """Resource binding; returns the bound full JID (asserts a result)."""
        inner = '<resource>%s</resource>' % resource if resource is not None else ''
        res = self.iq('set', "<bind xmlns='%s'>%s</bind>" % (NS_BIND, inner))
        if res.get('type') != 'result':
            raise AssertionError('bind failed: %s' % self.describe(res))
        j = res.find('%s/%s' % (q(NS_BIND, 'bind'), q(NS_BIND, 'jid')))
        if j is None or not j.text:
            raise AssertionError('bind result without <jid/>: %s' % self.describe(res))
        self.jid = j.text.strip()
        return self.jid

    # -- errors -----------------------------------------------------------
    def expect_stream_error(self, timeout=None):
        """Read until the server closes the TCP connection and return the
        stream error found in everything received (AssertionError if none)."""
        self.read_until_closed(timeout)
        info = find_stream_error(self.text)
        if info is None:
            raise AssertionError('connection closed without a stream error; received:\n%s'
                                 % self.text[-4000:])
        return info


class StreamErrorReceived(AssertionError):
    def __init__(self, rs, el):
        self.element = el
        cond = None
        for c in el:
            if c.tag.startswith('{%s}' % NS_STREAMS) and local_name(c.tag) != 'text':
                cond = local_name(c.tag)
        self.condition = cond
        super().__init__('unexpected stream error %s: %s' % (cond, ET.tostring(el, encoding='unicode')))


# --------------------------------------------------------------------------
# slixmpp helper
# --------------------------------------------------------------------------

class _SlixLogBuffer(logging.Handler):
    def __init__(self, capacity=4000):
        super().__init__(logging.DEBUG)
        self.records = collections.deque(maxlen=capacity)
        self.count = 0

    def emit(self, record):
        try:
            self.records.append(self.format(record))
            self.count += 1
        except Exception:
            pass

    def since(self, n):
        lines = list(self.records)
        keep = self.count - n
        return lines[-keep:] if keep > 0 else []


SLIX_LOG = _SlixLogBuffer()
SLIX_LOG.setFormatter(logging.Formatter('%(relativeCreated)8.0fms %(name)s %(levelname)s %(message)s'))
_slog = logging.getLogger('slixmpp')
_slog.addHandler(SLIX_LOG)
_slog.setLevel(logging.DEBUG)
_slog.propagate = False


class SlixClient:
    """slixmpp ClientXMPP on 127.0.0.1 with certificate verification off.

    Must be created and used inside a running asyncio loop.

        c = SlixClient(srv, 'alice', 'pw', resource='r1', sasl_mech='SCRAM-SHA-256')
        outcome = await c.start()          # 'session_start', 'failed_auth', ...
        ...
        await c.stop()

    Channel binding: slixmpp 1.8.3 only knows tls-unique and, when it has a
    channel binding but the mechanism is not -PLUS, sends the gs2 flag 'y'
    (which a server advertising -PLUS must reject, RFC 5802 section 6).  By
    default we therefore hide the channel binding from slixmpp so that it
    sends 'n' like a client without channel binding support
    (native_channel_binding=True keeps slixmpp's own behaviour).
    """

    OUTCOMES = ('session_start', 'failed_auth', 'failed_all_auth', 'no_auth', 'stream_error',
                'disconnected', 'connection_failed', 'ssl_invalid_chain')

    def __init__(self, server, user, password, *, resource=None, direct_tls=False,
                 sasl_mech='SCRAM-SHA-256', port=None, tls_max=None,
                 native_channel_binding=False, plugins=()):
        import slixmpp
        self.server = server
        jid = server.jid(user) + ('/' + resource if resource else '')
        self.direct_tls = direct_tls
        self.port = port or (server.c2s_tls_port if direct_tls else server.c2s_port)
        self.xmpp = x = slixmpp.ClientXMPP(jid, password, sasl_mech=sasl_mech)
        for p in plugins:
            x.register_plugin(p)
        x.ssl_context = client_ssl_context(max_version=tls_max)
        x.use_ipv6 = False
        x.whitespace_keepalive = False
        x.default_domain = server.domain      # SNI; the address is forced below
        port_ = self.port

        async def pick(domain, port=None):
            return (server.domain, '127.0.0.1', port_)
        x._pick_dns_answer = pick

        if not native_channel_binding:
            fm = x['feature_mechanisms']
            orig = fm.sasl_callback

            def creds(required, optional):
                r = orig(required, optional)
                if 'channel_binding' in r:
                    r['channel_binding'] = b''
                return r
            fm.sasl_callback = creds

        self.events = []                      # (name, detail) in order
        self._flags = {}
        self.failure_condition = None
        self.stream_error_condition = None
        self.stream_error_text = None
        self.mechanism = None
        self.tls_version = None
        self._log_start = SLIX_LOG.count

        def record(name, detail=None):
            self.events.append((name, detail))
            ev = self._flags.get(name)
            if ev is None:
                ev = self._flags[name] = asyncio.Event()
            ev.set()

        def on_failed_auth(stanza):
            self.failure_condition = stanza['condition']
            record('failed_auth', stanza['condition'])

        def on_stream_error(err):
            self.stream_error_condition = err['condition']
            self.stream_error_text = err['text']
            record('stream_error', err['condition'])

        def on_auth_success(stanza):
            mech = x['feature_mechanisms'].mech
            self.mechanism = getattr(mech, 'name', None)
            record('auth_success', self.mechanism)

        def on_session_start(_):
            try:
                self.tls_version = x.transport.get_extra_info('ssl_object').version()
            except Exception:
                self.tls_version = None
            record('session_start', str(x.boundjid))

        x.add_event_handler('session_start', on_session_start)
        x.add_event_handler('failed_auth', on_failed_auth)
        x.add_event_handler('stream_error', on_stream_error)
        x.add_event_handler('auth_success', on_auth_success)
        for name in ('failed_all_auth', 'no_auth', 'disconnected', 'connection_failed',
                     'ssl_invalid_chain', 'session_bind', 'tls_success'):
            x.add_event_handler(name, (lambda n: lambda d=None: record(n, repr(d)))(name))

    def _flag(self, name):
        ev = self._flags.get(name)
        if ev is None:
            ev = self._flags[name] = asyncio.Event()
        return ev

    def happened(self, name):
        return any(n == name for n, _ in self.events)

    async def wait_for(self, *names, timeout=TIMEOUT):
        """Wait until one of the named events happened; returns its name.
        Raises TimeoutError (with the event list) otherwise."""
        for n in names:
            if self.happened(n):
                return n
        waiters = {asyncio.ensure_future(self._flag(n).wait()): n for n in names}
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        for n in names:
            if self.happened(n):
                return n
        raise TimeoutError('slixmpp: none of %s within %.1fs; events=%s\n%s'
                           % (names, timeout, self.events, self.log_tail()))

    async def start(self, timeout=TIMEOUT):
        """Connect and wait for session_start or a definite failure.
        Returns the name of the first outcome event."""
        self.xmpp.connect(('127.0.0.1', self.port), use_ssl=self.direct_tls,
                          force_starttls=not self.direct_tls)
        outcome = await self.wait_for('session_start', 'failed_auth', 'failed_all_auth', 'no_auth',
                                      'stream_error', 'disconnected', 'ssl_invalid_chain',
                                      timeout=timeout)
        return outcome

    @property
    def bound_jid(self):
        return str(self.xmpp.boundjid)

    async def stop(self, timeout=5):
        x = self.xmpp
        try:
            x.cancel_connection_attempt()
            if x.transport is not None:
                fut = x.disconnect(wait=1.0)
                if fut is not None:
                    await asyncio.wait_for(fut, timeout)
        except Exception:
            pass
        finally:
            try:
                if x.transport is not None:
                    x.abort()
            except Exception:
                pass
            await asyncio.sleep(0)

    def log_tail(self, n=60):
        return '\n'.join(SLIX_LOG.since(self._log_start)[-n:])

    def summary(self):
        return 'events=%s failure=%s stream_error=%s\n--- slixmpp log ---\n%s' % (
            self.events, self.failure_condition, self.stream_error_condition, self.log_tail())


def run_async(coro, timeout=3 * TIMEOUT):
    """asyncio.run(coro) with an overall timeout."""
    async def wrapper():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(wrapper())


def slix_login(server, user, password, timeout=TIMEOUT, **kw):
    """Log one slixmpp client in and out; returns the (stopped) SlixClient
    with .events, .failure_condition, .bound_jid, .mechanism ..."""
    async def go():
        c = SlixClient(server, user, password, **kw)
        try:
            c.outcome = await c.start(timeout)
            if c.outcome == 'failed_auth':
                # slixmpp gives up and disconnects after the last mechanism
                try:
                    await c.wait_for('disconnected', timeout=timeout)
                except TimeoutError:
                    pass
        finally:
            await c.stop()
        return c
    return run_async(go(), timeout=3 * timeout)


# --------------------------------------------------------------------------
# unittest base class
# --------------------------------------------------------------------------

class TernTestCase(unittest.TestCase):
    """One ternd per test class (config: server_config overrides), with the
    accounts in `users` created through ternctl after it is ready."""

    server_config = {}
    users = {'alice': 'alice-Secret-1', 'bob': 'bob-Secret-2'}
    server_stops_in_test = False
    _user_counter = itertools.count(1)

    @classmethod
    def setUpClass(cls):
        cls.server = TernServer(cls.server_config, name=cls.__name__)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        for u, p in cls.users.items():
            cls.server.adduser(u, p)

    @classmethod
    def tearDownClass(cls):
        # ternd must stop cleanly: exit status 0 after SIGTERM, and (under
        # ASan/UBSan) no sanitizer report anywhere in its log.
        rc = None if cls.server_stops_in_test else cls.server.stop()
        bad = [line for line in cls.server.log_text().splitlines()
               if 'ERROR: AddressSanitizer' in line or 'ERROR: LeakSanitizer' in line
               or 'runtime error:' in line]
        if bad or rc not in (0, None):
            raise AssertionError('ternd ended with status %s%s' % (
                rc, ('; sanitizer: ' + bad[0]) if bad else ''))

    def tearDown(self):
        # a crash of ternd while handling this test's input is a failure
        if not self.server_stops_in_test and self.server.proc is not None:
            rc = self.server.proc.poll()
            if rc is not None:
                self.server._reap(rc)
                self.fail('ternd died during the test (exit status %s)' % rc)

    # helpers
    def new_user(self, prefix='u', password=None):
        name = '%s%d' % (prefix, next(self._user_counter))
        password = password or 'pw-' + secrets.token_hex(6)
        self.server.adduser(name, password)
        return name, password

    def raw(self, tls_port=False, **kw):
        port = self.server.c2s_tls_port if tls_port else self.server.c2s_port
        rs = RawStream(port, direct_tls=tls_port, **kw)
        self.addCleanup(rs.close)
        return rs

    def assertStreamError(self, rs, condition, timeout=None):
        """The server sent <stream:error><condition/>..., </stream:stream>
        and closed the TCP connection."""
        info = rs.expect_stream_error(timeout)
        self.assertEqual(info.condition, condition,
                         'wrong stream error condition; received:\n%s' % rs.text[-3000:])
        self.assertTrue(info.stream_closed_tag,
                        'no </stream:stream> after the stream error; received:\n%s' % rs.text[-3000:])
        self.assertTrue(rs.eof, 'connection still open after the stream error')
        return info

    def assertSasl(self, el, expected):
        self.assertEqual(RawStream.sasl_condition(el), expected, ET.tostring(el, encoding='unicode'))
