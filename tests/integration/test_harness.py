"""Self-tests of the harness pieces that need no ternd: our SCRAM client
against the RFC test vectors, channel binding helpers, the stream error
matcher and the config writer."""

import base64
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from harness import (ScramClient, cert_signature_oid, deep_merge, find_stream_error, saslname,
                     tls_exporter, tls_server_end_point, to_yaml)


class ScramVectorTests(unittest.TestCase):

    def test_rfc5802_scram_sha1(self):
        sc = ScramClient('SHA-1', 'user', 'pencil', nonce='fyko+d2lbbFgONRv9qkxdawL')
        self.assertEqual(sc.client_first(), b'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL')
        final = sc.client_final(b'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096')
        self.assertEqual(final, b'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,'
                                b'p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=')
        self.assertTrue(sc.verify_server_final(b'v=rmF9pqV8S7suAoZWja4dJRkFsKQ='))
        self.assertFalse(sc.verify_server_final(b'v=AAAApqV8S7suAoZWja4dJRkFsKQ='))

    def test_rfc7677_scram_sha256(self):
        sc = ScramClient('SHA-256', 'user', 'pencil', nonce='rOprNGfwEbeRWgbNEkqO')
        self.assertEqual(sc.client_first(), b'n,,n=user,r=rOprNGfwEbeRWgbNEkqO')
        final = sc.client_final(b'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,'
                                b's=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')
        self.assertEqual(final, b'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,'
                                b'p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')
        self.assertTrue(sc.verify_server_final(b'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))
        self.assertFalse(sc.verify_server_final(b'e=invalid-proof'))
        self.assertEqual(sc.server_error, 'invalid-proof')

    def test_nonce_must_extend_ours(self):
        sc = ScramClient('SHA-256', 'user', 'pencil', nonce='abc')
        with self.assertRaises(Exception):
            sc.client_final(b'r=xyz123,s=QSXCR+Q6sek8bf92,i=4096')
        with self.assertRaises(Exception):
            sc.client_final(b'r=abc,s=QSXCR+Q6sek8bf92,i=4096')

    def test_plus_gs2_header_and_c_attribute(self):
        cb = bytes(range(32))
        sc = ScramClient('SHA-256', 'user', 'pencil', nonce='N', cb_type='tls-server-end-point', cb_data=cb)
        self.assertEqual(sc.client_first(), b'p=tls-server-end-point,,n=user,r=N')
        final = sc.client_final(b'r=NS,s=QSXCR+Q6sek8bf92,i=1')
        c = final.split(b',')[0]
        self.assertEqual(base64.b64decode(c[2:]), b'p=tls-server-end-point,,' + cb)

    def test_y_flag_and_saslname(self):
        sc = ScramClient('SHA-1', 'a,b=c', 'p', nonce='N', gs2_flag='y')
        self.assertEqual(sc.client_first(), b'y,,n=a=2Cb=3Dc,r=N')
        self.assertEqual(saslname('=,'), '=3D=2C')
        final = sc.client_final(b'r=NS,s=QSXCR+Q6sek8bf92,i=1')
        self.assertTrue(final.startswith(b'c=eSws,'))  # base64('y,,')


def _openssl(*args):
    return subprocess.run(['openssl', *args], check=True, capture_output=True, timeout=60)


@unittest.skipUnless(shutil.which('openssl'), 'openssl CLI not available')
class ChannelBindingTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='tern-cb-')
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)

    def make_cert(self, name, keyopts, digest):
        k, c = os.path.join(self.dir, name + '.key'), os.path.join(self.dir, name + '.pem')
        _openssl('req', '-x509', *keyopts, '-' + digest, '-keyout', k, '-out', c, '-days', '1', '-nodes',
                 '-subj', '/CN=localhost')
        der = ssl.PEM_cert_to_DER_cert(open(c).read())
        return k, c, der

    def fingerprint(self, pem, digest):
        r = _openssl('x509', '-in', pem, '-noout', '-fingerprint', '-' + digest)
        return bytes.fromhex(r.stdout.decode().strip().split('=', 1)[1].replace(':', ''))

    def test_rsa_sha256(self):
        _, pem, der = self.make_cert('rsa256', ['-newkey', 'rsa:2048'], 'sha256')
        self.assertEqual(cert_signature_oid(der), '1.2.840.113549.1.1.11')
        self.assertEqual(tls_server_end_point(der), self.fingerprint(pem, 'sha256'))

    def test_ecdsa_sha256(self):
        _, pem, der = self.make_cert('ec256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'sha256')
        self.assertEqual(cert_signature_oid(der), '1.2.840.10045.4.3.2')
        self.assertEqual(tls_server_end_point(der), self.fingerprint(pem, 'sha256'))

    def test_ecdsa_sha384(self):
        _, pem, der = self.make_cert('ec384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'sha384')
        self.assertEqual(tls_server_end_point(der), self.fingerprint(pem, 'sha384'))

    def test_tls_exporter_both_ends_agree(self):
        k, c, _ = self.make_cert('exp', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'sha256')
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version):
                sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                sctx.load_cert_chain(c, k)
                sctx.maximum_version = version
                ls = socket.socket()
                ls.bind(('127.0.0.1', 0))
                ls.listen()
                res = {}

                def srv():
                    conn, _ = ls.accept()
                    conn.settimeout(5)
                    t = sctx.wrap_socket(conn, server_side=True)
                    res['v'] = tls_exporter(t)
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
                self.assertEqual(len(mine), 32)
                self.assertEqual(mine, res['v'])


class StreamErrorMatcherTests(unittest.TestCase):

    def test_quote_styles_and_attribute_order(self):
        for text in (
            "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
            '<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error></stream:stream>',
            '<stream:error><host-unknown foo="1" xmlns = "urn:ietf:params:xml:ns:xmpp-streams"></host-unknown>'
            '<text xml:lang="en" xmlns="urn:ietf:params:xml:ns:xmpp-streams">nope</text></stream:error>'
            '</stream:stream>',
            '<error xmlns="http://etherx.jabber.org/streams"><text xmlns="urn:ietf:params:xml:ns:xmpp-streams">'
            'x</text><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error></stream>',
        ):
            with self.subTest(text=text):
                info = find_stream_error("<?xml version='1.0'?><stream:stream xmlns:stream='x'>" + text)
                self.assertIsNotNone(info)
                self.assertEqual(info.condition, 'host-unknown')
                self.assertTrue(info.stream_closed_tag)

    def test_stanza_error_is_not_a_stream_error(self):
        text = ("<iq type='error' id='1'><error type='cancel'><service-unavailable "
                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        self.assertIsNone(find_stream_error(text))
        info = find_stream_error(text + "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                 "</stream:error>")
        self.assertEqual(info.condition, 'conflict')
        self.assertFalse(info.stream_closed_tag)


class ConfigWriterTests(unittest.TestCase):

    def test_merge_and_yaml(self):
        cfg = deep_merge({'a': {'b': 1, 'c': 2}, 'd': 'x'}, {'a': {'c': 3}, 'd': None, 'e': True})
        self.assertEqual(cfg, {'a': {'b': 1, 'c': 3}, 'e': True})
        y = to_yaml({'domain': 'localhost', 'c2s': {'port': 5222, 'starttls_required': False},
                     'limits': {'max_stanza_size': '64KiB'}, 'data_dir': '/tmp/a b', 'weird': 'yes'})
        self.assertEqual(y, 'domain: localhost\nc2s:\n  port: 5222\n  starttls_required: false\n'
                            'limits:\n  max_stanza_size: 64KiB\ndata_dir: "/tmp/a b"\nweird: "yes"')


if __name__ == '__main__':
    unittest.main()
