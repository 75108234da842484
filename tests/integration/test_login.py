"""Login: STARTTLS / direct TLS, SASL mechanisms, channel binding, failures,
and the per-IP authentication ban."""

import functools
import ssl
import time
import unittest

from harness import (NS_SASL, NS_TLS, RawStream, TernTestCase, loopback_alias_usable, q, slix_login,
                     tls_exporter)

ALL_MECHS = {'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'}


@functools.lru_cache(maxsize=None)
def exporter_usable():
    """Can this Python compute tls-exporter (ctypes route)?  Checked against
    a throwaway local TLS 1.3 connection to ourselves."""
    import socket
    import threading
    import tempfile
    import subprocess
    import shutil
    d = tempfile.mkdtemp(prefix='tern-exp-')
    try:
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                        '-keyout', d + '/k.pem', '-out', d + '/c.pem', '-days', '1', '-nodes',
                        '-subj', '/CN=localhost'], check=True, capture_output=True, timeout=20)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(d + '/c.pem', d + '/k.pem')
        ls = socket.socket()
        ls.bind(('127.0.0.1', 0))
        ls.listen()
        res = {}

        def srv():
            c, _ = ls.accept()
            c.settimeout(5)
            t = sctx.wrap_socket(c, server_side=True)
            res['s'] = tls_exporter(t)
            t.recv(1)
            t.close()
        th = threading.Thread(target=srv, daemon=True)
        th.start()
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        t = cctx.wrap_socket(socket.create_connection(ls.getsockname(), timeout=5))
        mine = tls_exporter(t)
        t.send(b'x')
        th.join(5)
        t.close()
        ls.close()
        return mine == res.get('s') and len(mine) == 32
    except Exception:
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


class LoginTests(TernTestCase):
    # many deliberate failures here: keep the ban out of the way
    server_config = {'auth': {'max_failures': 1000}}

    # -- features ---------------------------------------------------------
    def test_features_before_tls_require_starttls(self):
        rs = self.raw()
        f = rs.open_stream()
        st = f.find(q(NS_TLS, 'starttls'))
        self.assertIsNotNone(st, 'no <starttls/> in pre-TLS features: %s' % rs.describe(f))
        self.assertIsNotNone(st.find(q(NS_TLS, 'required')), '<starttls/> lacks <required/>')
        self.assertEqual(RawStream.mechanisms(f), [], 'SASL offered before TLS: %s' % rs.describe(f))
        self.assertEqual(rs.stream_header.get('version'), '1.0')
        self.assertEqual(rs.stream_header.get('from'), 'localhost')
        self.assertTrue(rs.stream_header.get('id'), 'server stream header has no id')

    def test_features_after_tls13(self):
        rs = self.raw()
        rs.open_stream()
        rs.starttls(tls_min=ssl.TLSVersion.TLSv1_3)
        self.assertEqual(rs.tls_version, 'TLSv1.3')
        f = rs.open_stream()
        self.assertEqual(set(RawStream.mechanisms(f)), ALL_MECHS, rs.describe(f))
        self.assertIsNone(f.find(q(NS_TLS, 'starttls')), 'starttls offered again after TLS')
        cbs = RawStream.cb_types(f)
        self.assertIn('tls-exporter', cbs, rs.describe(f))
        self.assertIn('tls-server-end-point', cbs, rs.describe(f))

    def test_features_after_tls12(self):
        rs = self.raw()
        rs.open_stream()
        rs.starttls(tls_max=ssl.TLSVersion.TLSv1_2)
        self.assertEqual(rs.tls_version, 'TLSv1.2')
        f = rs.open_stream()
        self.assertEqual(set(RawStream.mechanisms(f)), ALL_MECHS, rs.describe(f))
        cbs = RawStream.cb_types(f)
        self.assertIn('tls-server-end-point', cbs, rs.describe(f))
        self.assertNotIn('tls-exporter', cbs, 'tls-exporter offered on TLS 1.2: %s' % rs.describe(f))

    def test_tls11_refused(self):
        # first make sure this client *can* speak TLS 1.1, otherwise the
        # test would pass for the wrong reason
        if not _client_can_tls11():
            self.skipTest('local OpenSSL cannot offer TLS 1.1')
        rs = self.raw()
        rs.open_stream()
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            rs.starttls(tls_min=ssl.TLSVersion.TLSv1_1, tls_max=ssl.TLSVersion.TLSv1_1, seclevel0=True)
        # and direct TLS as well
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            RawStream(self.server.c2s_tls_port, direct_tls=True, tls_min=ssl.TLSVersion.TLSv1_1,
                      tls_max=ssl.TLSVersion.TLSv1_1, seclevel0=True).close()

    # -- slixmpp ----------------------------------------------------------
    def test_slixmpp_starttls_scram_sha256(self):
        c = slix_login(self.server, 'alice', 'alice-Secret-1', resource='slix256', sasl_mech='SCRAM-SHA-256')
        self.assertEqual(c.outcome, 'session_start', c.summary())
        self.assertEqual(c.mechanism, 'SCRAM-SHA-256', c.summary())
        self.assertEqual(c.bound_jid, 'alice@localhost/slix256')
        self.assertIn(c.tls_version, ('TLSv1.2', 'TLSv1.3'))
        self.assertTrue(c.happened('tls_success'), 'slixmpp did not go through STARTTLS: %s' % c.summary())

    def test_slixmpp_starttls_scram_sha1(self):
        c = slix_login(self.server, 'bob', 'bob-Secret-2', resource='slix1', sasl_mech='SCRAM-SHA-1')
        self.assertEqual(c.outcome, 'session_start', c.summary())
        self.assertEqual(c.mechanism, 'SCRAM-SHA-1', c.summary())
        self.assertEqual(c.bound_jid, 'bob@localhost/slix1')

    def test_slixmpp_direct_tls(self):
        c = slix_login(self.server, 'alice', 'alice-Secret-1', resource='direct', direct_tls=True,
                       sasl_mech='SCRAM-SHA-256')
        self.assertEqual(c.outcome, 'session_start', c.summary())
        self.assertEqual(c.bound_jid, 'alice@localhost/direct')
        self.assertIn(c.tls_version, ('TLSv1.2', 'TLSv1.3'))
        self.assertFalse(c.happened('tls_success'), 'STARTTLS used on the direct TLS port')

    def test_slixmpp_scram_plus_native_channel_binding(self):
        # slixmpp 1.8.3 only knows tls-unique (TLS 1.2); use it if advertised
        rs = self.raw()
        rs.open_stream()
        rs.starttls(tls_max=ssl.TLSVersion.TLSv1_2)
        if 'tls-unique' not in RawStream.cb_types(rs.open_stream()):
            self.skipTest('server does not advertise tls-unique on TLS 1.2')
        c = slix_login(self.server, 'alice', 'alice-Secret-1', resource='slixplus', sasl_mech='SCRAM-SHA-256-PLUS',
                       tls_max=ssl.TLSVersion.TLSv1_2, native_channel_binding=True)
        self.assertEqual(c.outcome, 'session_start', c.summary())
        self.assertEqual(c.mechanism, 'SCRAM-SHA-256-PLUS', c.summary())
        self.assertEqual(c.tls_version, 'TLSv1.2')

    def test_slixmpp_wrong_password(self):
        c = slix_login(self.server, 'alice', 'not-the-password', resource='bad', sasl_mech='SCRAM-SHA-256')
        self.assertEqual(c.outcome, 'failed_auth', c.summary())
        self.assertEqual(c.failure_condition, 'not-authorized', c.summary())
        self.assertFalse(c.happened('session_start'))

    # -- raw SASL over TLS ------------------------------------------------
    def test_raw_direct_tls_features_and_plain(self):
        rs = self.raw(tls_port=True)
        f = rs.open_stream()
        self.assertIsNone(f.find(q(NS_TLS, 'starttls')), 'starttls offered on the direct TLS port')
        self.assertEqual(set(RawStream.mechanisms(f)), ALL_MECHS, rs.describe(f))
        self.assertSasl(rs.auth_plain('alice', 'alice-Secret-1'), 'success')
        rs.open_stream()
        self.assertEqual(rs.bind('rawdirect'), 'alice@localhost/rawdirect')

    def test_raw_plain_over_starttls(self):
        rs = self.raw()
        self.assertEqual(rs.login('alice', 'alice-Secret-1', mech='PLAIN', resource='plain'),
                         'alice@localhost/plain')

    def test_raw_scram_sha256(self):
        rs = self.raw()
        el = rs.authenticate('bob', 'bob-Secret-2', 'SCRAM-SHA-256')
        self.assertSasl(el, 'success')

    def test_raw_scram_sha1(self):
        rs = self.raw()
        el = rs.authenticate('bob', 'bob-Secret-2', 'SCRAM-SHA-1')
        self.assertSasl(el, 'success')

    def test_raw_scram_iterations_from_config(self):
        rs = self.raw()
        rs.open_stream()
        rs.starttls()
        rs.open_stream()
        el, sc = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256')
        self.assertSasl(el, 'success')
        self.assertEqual(sc.iterations, 4096)
        self.assertGreaterEqual(len(sc.salt), 8)

    def test_raw_scram_sha256_plus_server_end_point(self):
        rs = self.raw()
        jid = rs.login('alice', 'alice-Secret-1', mech='SCRAM-SHA-256-PLUS', cb_type='tls-server-end-point',
                       resource='plus256')
        self.assertEqual(jid, 'alice@localhost/plus256')

    def test_raw_scram_sha1_plus_server_end_point(self):
        rs = self.raw()
        el = rs.authenticate('alice', 'alice-Secret-1', 'SCRAM-SHA-1-PLUS', cb_type='tls-server-end-point')
        self.assertSasl(el, 'success')

    def test_raw_scram_plus_server_end_point_tls12(self):
        rs = self.raw()
        rs.open_stream()
        rs.starttls(tls_max=ssl.TLSVersion.TLSv1_2)
        rs.open_stream()
        el, _ = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256-PLUS', cb_type='tls-server-end-point')
        self.assertSasl(el, 'success')

    def test_raw_scram_plus_server_end_point_direct_tls(self):
        rs = self.raw(tls_port=True)
        el = rs.authenticate('alice', 'alice-Secret-1', 'SCRAM-SHA-256-PLUS', cb_type='tls-server-end-point')
        self.assertSasl(el, 'success')

    def test_raw_scram_sha256_plus_tls_exporter(self):
        if not exporter_usable():
            self.skipTest('cannot compute tls-exporter from Python here')
        rs = self.raw()
        rs.open_stream()
        rs.starttls(tls_min=ssl.TLSVersion.TLSv1_3)
        rs.open_stream()
        el, _ = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256-PLUS', cb_type='tls-exporter')
        self.assertSasl(el, 'success')

    def test_raw_scram_plus_wrong_binding_data_refused(self):
        rs = self.raw()
        rs.open_stream()
        rs.starttls()
        rs.open_stream()
        el, _ = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256-PLUS', cb_type='tls-server-end-point',
                              cb_data=b'\x00' * 32)
        self.assertEqual(el.tag, q(NS_SASL, 'failure'), 'wrong channel binding accepted: %s' % rs.describe(el))

    def test_raw_scram_plus_unadvertised_binding_type_refused(self):
        # TLS 1.3: tls-unique is not defined there (RFC 9266), so whatever
        # the server advertises, tls-unique must not be accepted
        rs = self.raw()
        rs.open_stream()
        rs.starttls(tls_min=ssl.TLSVersion.TLSv1_3)
        f = rs.open_stream()
        self.assertNotIn('tls-unique', RawStream.cb_types(f))
        el, _ = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256-PLUS', cb_type='tls-unique')
        self.assertEqual(el.tag, q(NS_SASL, 'failure'), 'tls-unique accepted on TLS 1.3: %s' % rs.describe(el))
        # a registered type nobody offers, on TLS 1.2
        rs = self.raw()
        rs.open_stream()
        rs.starttls(tls_max=ssl.TLSVersion.TLSv1_2)
        f = rs.open_stream()
        self.assertNotIn('tls-unique-for-telnet', RawStream.cb_types(f))
        el, _ = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256-PLUS', cb_type='tls-unique-for-telnet',
                              cb_data=b'\x01' * 12)
        self.assertEqual(el.tag, q(NS_SASL, 'failure'), 'unadvertised type accepted: %s' % rs.describe(el))

    def test_every_advertised_channel_binding_works(self):
        # XEP-0440: each advertised type must be usable with both -PLUS mechs
        tried = set()
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            rs = self.raw()
            rs.open_stream()
            rs.starttls(tls_min=version, tls_max=version)
            f = rs.open_stream()
            types = RawStream.cb_types(f)
            self.assertTrue(types, 'no channel binding advertised on %s' % rs.tls_version)
            rs.close()
            for cb_type in types:
                if cb_type == 'tls-exporter' and not exporter_usable():
                    continue
                for mech in ('SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'):
                    with self.subTest(tls=rs.tls_version, cb=cb_type, mech=mech):
                        r = self.raw()
                        r.open_stream()
                        r.starttls(tls_min=version, tls_max=version)
                        r.open_stream()
                        el, _ = r.auth_scram('alice', 'alice-Secret-1', mech, cb_type=cb_type)
                        self.assertSasl(el, 'success')
                        tried.add((rs.tls_version, cb_type))
        self.assertIn(('TLSv1.2', 'tls-server-end-point'), tried)
        self.assertIn(('TLSv1.3', 'tls-server-end-point'), tried)

    def test_raw_scram_gs2_y_flag_refused_when_plus_offered(self):
        # RFC 5802 section 6: flag 'y' ("client supports channel binding but
        # thinks the server does not") must fail when the server offers -PLUS
        rs = self.raw()
        rs.open_stream()
        rs.starttls()
        f = rs.open_stream()
        self.assertIn('SCRAM-SHA-256-PLUS', RawStream.mechanisms(f))
        el, _ = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256', gs2_flag='y')
        self.assertEqual(el.tag, q(NS_SASL, 'failure'), 'downgraded SCRAM (gs2 y) accepted: %s' % rs.describe(el))

    # -- failures ---------------------------------------------------------
    def _tls_stream(self):
        rs = self.raw()
        rs.open_stream()
        rs.starttls()
        rs.open_stream()
        return rs

    def test_raw_wrong_password_plain(self):
        rs = self._tls_stream()
        self.assertSasl(rs.auth_plain('alice', 'wrong'), 'not-authorized')

    def test_raw_wrong_password_scram(self):
        for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-1', 'SCRAM-SHA-256-PLUS'):
            with self.subTest(mech=mech):
                rs = self._tls_stream()
                el, sc = rs.auth_scram('alice', 'wrong', mech)
                self.assertIsNotNone(sc.server_first, 'no SCRAM challenge for a known user')
                self.assertSasl(el, 'not-authorized')

    def test_unknown_user_refused_like_wrong_password(self):
        # PLAIN: identical failure
        rs = self._tls_stream()
        known = rs.auth_plain('alice', 'wrong')
        rs2 = self._tls_stream()
        unknown = rs2.auth_plain('nosuchuser', 'whatever')
        self.assertSasl(unknown, 'not-authorized')
        self.assertEqual([c.tag for c in unknown if c.tag != q(NS_SASL, 'text')],
                         [c.tag for c in known if c.tag != q(NS_SASL, 'text')])
        # SCRAM: the unknown user also gets a challenge (same iteration count)
        # and only fails after the proof, like a wrong password
        for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-1'):
            with self.subTest(mech=mech):
                rs3 = self._tls_stream()
                el_known, sc_known = rs3.auth_scram('alice', 'wrong', mech)
                rs4 = self._tls_stream()
                el, sc = rs4.auth_scram('nosuchuser', 'whatever', mech)
                self.assertIsNotNone(sc.server_first, 'unknown user failed before the SCRAM challenge: %s'
                                     % rs4.describe(el))
                self.assertEqual(sc.iterations, sc_known.iterations)
                self.assertSasl(el, 'not-authorized')

    def test_auth_before_tls_encryption_required(self):
        for mech in ('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-1'):
            with self.subTest(mech=mech):
                rs = self.raw()
                rs.open_stream()
                if mech == 'PLAIN':
                    el = rs.auth_plain('alice', 'alice-Secret-1')
                else:
                    el, _ = rs.auth_scram('alice', 'alice-Secret-1', mech)
                self.assertSasl(el, 'encryption-required')

    def test_unknown_mechanism(self):
        rs = self._tls_stream()
        self.assertSasl(rs.sasl_auth('X-BOGUS-MECH', b'abc'), 'invalid-mechanism')

    def test_bad_base64(self):
        rs = self._tls_stream()
        self.assertSasl(rs.sasl_auth('PLAIN', raw_initial='!!!not*base64!!!'), 'incorrect-encoding')

    def test_success_after_failure_on_new_stream(self):
        # a failure does not poison the account
        rs = self._tls_stream()
        self.assertSasl(rs.auth_plain('bob', 'nope'), 'not-authorized')
        rs2 = self.raw()
        self.assertEqual(rs2.login('bob', 'bob-Secret-2', resource='after'), 'bob@localhost/after')


class OptionalStarttlsTests(TernTestCase):
    server_config = {'c2s': {'starttls_required': False}, 'auth': {'max_failures': 1000}}

    def test_pre_tls_features_offer_only_scram(self):
        rs = self.raw()
        f = rs.open_stream()
        st = f.find(q(NS_TLS, 'starttls'))
        self.assertIsNotNone(st, 'starttls not offered: %s' % rs.describe(f))
        self.assertIsNone(st.find(q(NS_TLS, 'required')), 'starttls marked required: %s' % rs.describe(f))
        self.assertEqual(sorted(RawStream.mechanisms(f)), ['SCRAM-SHA-1', 'SCRAM-SHA-256'], rs.describe(f))

    def test_plain_before_tls_refused(self):
        rs = self.raw()
        rs.open_stream()
        self.assertSasl(rs.auth_plain('alice', 'alice-Secret-1'), 'encryption-required')

    def test_scram_before_tls_allowed(self):
        # offered before TLS, so it must work before TLS
        rs = self.raw()
        rs.open_stream()
        el, _ = rs.auth_scram('alice', 'alice-Secret-1', 'SCRAM-SHA-256')
        self.assertSasl(el, 'success')
        rs.open_stream()
        self.assertEqual(rs.bind('cleartext'), 'alice@localhost/cleartext')

    def test_starttls_then_plain(self):
        rs = self.raw()
        f = rs.open_stream()
        rs.starttls()
        f = rs.open_stream()
        self.assertEqual(set(RawStream.mechanisms(f)), ALL_MECHS)
        self.assertSasl(rs.auth_plain('bob', 'bob-Secret-2'), 'success')


@functools.lru_cache(maxsize=None)
def _client_can_tls11():
    """Does local OpenSSL (at SECLEVEL=0) complete a TLS 1.1 handshake with itself?"""
    import socket
    import threading
    import tempfile
    import subprocess
    import shutil
    d = tempfile.mkdtemp(prefix='tern-tls11-')
    try:
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-keyout', d + '/k.pem',
                        '-out', d + '/c.pem', '-days', '1', '-nodes', '-subj', '/CN=localhost'],
                       check=True, capture_output=True, timeout=30)

        def ctx(server):
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
            c.minimum_version = ssl.TLSVersion.TLSv1_1
            c.maximum_version = ssl.TLSVersion.TLSv1_1
            c.set_ciphers('DEFAULT:@SECLEVEL=0')
            if server:
                c.load_cert_chain(d + '/c.pem', d + '/k.pem')
            else:
                c.check_hostname = False
                c.verify_mode = ssl.CERT_NONE
            return c
        ls = socket.socket()
        ls.bind(('127.0.0.1', 0))
        ls.listen()

        def srv():
            try:
                c, _ = ls.accept()
                c.settimeout(5)
                t = ctx(True).wrap_socket(c, server_side=True)
                t.recv(1)
                t.close()
            except Exception:
                pass
        th = threading.Thread(target=srv, daemon=True)
        th.start()
        t = ctx(False).wrap_socket(socket.create_connection(ls.getsockname(), timeout=5))
        ok = t.version() == 'TLSv1.1'
        t.send(b'x')
        t.close()
        th.join(5)
        ls.close()
        return ok
    except Exception:
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


class AuthBanTests(TernTestCase):
    BAN = 3.0
    server_config = {'auth': {'max_failures': 5, 'failure_window': '30s', 'ban_time': '3s'}}

    def _tls(self, source_ip=None):
        rs = self.raw(source_ip=source_ip)
        rs.open_stream()
        rs.starttls()
        rs.open_stream()
        return rs

    def test_ban_after_max_failures_then_lifted(self):
        for i in range(5):
            rs = self._tls()
            self.assertSasl(rs.auth_plain('alice', 'wrong-%d' % i), 'not-authorized')
            rs.close()
        # sixth attempt, right password: banned
        rs = self._tls()
        el = rs.auth_plain('alice', 'alice-Secret-1')
        self.assertSasl(el, 'temporary-auth-failure')
        # SCRAM too, refused at the <auth> already
        rs = self._tls()
        el = rs.sasl_auth('SCRAM-SHA-256', b'n,,n=alice,r=abcdefghijklmnop')
        self.assertSasl(el, 'temporary-auth-failure')
        last_banned = time.monotonic()
        rs.close()
        # another source address is not affected
        if loopback_alias_usable('127.0.0.2'):
            rs = self._tls(source_ip='127.0.0.2')
            self.assertSasl(rs.auth_plain('alice', 'alice-Secret-1'), 'success')
            rs.close()
        # after ban_time the right password works again
        time.sleep(max(0.0, last_banned + self.BAN + 0.2 - time.monotonic()))
        deadline = time.monotonic() + 6
        while True:
            rs = self._tls()
            cond = RawStream.sasl_condition(rs.auth_plain('alice', 'alice-Secret-1'))
            rs.close()
            if cond == 'success' or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(cond, 'success', 'still refused %.1fs after the ban started'
                         % (time.monotonic() - last_banned))

    def test_fewer_failures_do_not_ban(self):
        ip = '127.0.0.3'
        if not loopback_alias_usable(ip):
            self.skipTest('cannot use %s as a source address' % ip)
        for i in range(4):
            rs = self._tls(source_ip=ip)
            self.assertSasl(rs.auth_plain('bob', 'wrong-%d' % i), 'not-authorized')
            rs.close()
        rs = self._tls(source_ip=ip)
        self.assertSasl(rs.auth_plain('bob', 'bob-Secret-2'), 'success')


if __name__ == '__main__':
    unittest.main()
