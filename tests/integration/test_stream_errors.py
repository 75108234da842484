"""Stream errors: restricted XML, malformed XML, size/depth limits, bad
stream headers, pre-auth timeout and the per-IP connection limit."""

import base64
import time
import unittest

from harness import (NS_PING, NS_SASL, NS_STANZAS, NS_CLIENT, RawStream, StreamClosed, TernTestCase,
                     loopback_alias_usable, q)

PW = 'alice-Secret-1'
STANZA_LIMIT = 64 * 1024


class StreamErrorTests(TernTestCase):
    server_config = {'limits': {'max_stanza_size': '64KiB', 'max_depth': 32}}

    def opened(self, **kw):
        """A plaintext stream whose header was accepted (features received)."""
        rs = self.raw(**kw)
        rs.open_stream()
        return rs

    def logged_in(self, resource):
        rs = self.raw()
        rs.login('alice', PW, resource=resource)
        return rs

    # -- restricted XML ---------------------------------------------------
    def test_dtd_in_prolog_restricted_xml(self):
        rs = self.raw()
        rs.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'boom'>]>")
        rs.send(RawStream.header(xml_decl=False))
        self.assertStreamError(rs, 'restricted-xml')

    def test_comment_between_stanzas_restricted_xml(self):
        rs = self.opened()
        rs.send('<!-- a comment -->')
        self.assertStreamError(rs, 'restricted-xml')

    def test_comment_inside_stanza_restricted_xml(self):
        rs = self.opened()
        rs.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><!-- hidden --></starttls>")
        self.assertStreamError(rs, 'restricted-xml')

    def test_comment_inside_stanza_after_auth_restricted_xml(self):
        rs = self.logged_in('comment')
        rs.send("<message to='alice@localhost' type='chat'><body>hi<!-- x --></body></message>")
        self.assertStreamError(rs, 'restricted-xml')

    def test_processing_instruction_between_stanzas_restricted_xml(self):
        rs = self.opened()
        rs.send("<?evil instruction?>")
        self.assertStreamError(rs, 'restricted-xml')

    def test_processing_instruction_inside_stanza_restricted_xml(self):
        rs = self.opened()
        rs.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><?evil instruction?></starttls>")
        self.assertStreamError(rs, 'restricted-xml')

    def test_processing_instruction_inside_stanza_after_auth_restricted_xml(self):
        rs = self.logged_in('pi')
        rs.send("<iq type='get' id='pi1'><?evil x?><ping xmlns='urn:xmpp:ping'/></iq>")
        self.assertStreamError(rs, 'restricted-xml')

    # -- malformed --------------------------------------------------------
    def test_garbage_after_header_not_well_formed(self):
        rs = self.opened()
        rs.send('<<<>>>')
        self.assertStreamError(rs, 'not-well-formed')

    def test_garbage_instead_of_header_not_well_formed(self):
        rs = self.raw()
        rs.send('<<<>>>')
        self.assertStreamError(rs, 'not-well-formed')

    def test_mismatched_end_tag_not_well_formed(self):
        rs = self.opened()
        rs.send("<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></message>")
        self.assertStreamError(rs, 'not-well-formed')

    # -- size and depth limits -------------------------------------------
    def test_oversized_stanza_before_auth_policy_violation(self):
        # 12 KiB <auth/> over TLS: the right element in the right state,
        # only too big for the 8 KiB pre-auth limit
        rs = self.opened()
        rs.starttls()
        rs.open_stream()
        blob = base64.b64encode(b'\0alice\0' + b'x' * 9000).decode()
        self.assertGreater(len(blob), 8 * 1024 + 1024)
        rs.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, blob))
        self.assertStreamError(rs, 'policy-violation')

    def test_oversized_stanza_before_tls_policy_violation(self):
        rs = self.opened()
        rs.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>%s</starttls>" % ('x' * (12 * 1024)))
        self.assertStreamError(rs, 'policy-violation')

    def test_preauth_limit_allows_small_stanza(self):
        # control for the pre-auth limit: a 6 KiB (< 8 KiB) <auth/> is
        # processed (here: refused as not-authorized, no stream error)
        rs = self.opened()
        rs.starttls()
        rs.open_stream()
        blob = base64.b64encode(b'\0alice\0' + b'x' * 4400).decode()
        self.assertGreater(len(blob), 5 * 1024)
        el = rs.sasl_auth('PLAIN', raw_initial=blob)
        self.assertSasl(el, 'not-authorized')

    def test_oversized_stanza_after_auth_policy_violation(self):
        rs = self.logged_in('big')
        body = 'y' * (STANZA_LIMIT + 6 * 1024)
        rs.send("<message to='alice@localhost/nowhere' type='chat'><body>%s</body></message>" % body)
        self.assertStreamError(rs, 'policy-violation')

    def test_large_stanza_under_limit_after_auth_accepted(self):
        # control: 40 KiB is over the pre-auth limit but under max_stanza_size
        rs = self.logged_in('large-ok')
        payload = 'z' * (40 * 1024)
        res = rs.iq('get', "<query xmlns='urn:example:tern:big'><data>%s</data></query>" % payload,
                    to='localhost')
        self.assertEqual(res.get('type'), 'error', rs.describe(res)[:2000])
        self.assertIsNotNone(res.find('%s/%s' % (q(NS_CLIENT, 'error'), q(NS_STANZAS, 'service-unavailable'))))

    def test_too_deep_policy_violation(self):
        rs = self.logged_in('deep')
        depth = 40
        rs.send("<message to='alice@localhost/nowhere'>" + '<a>' * depth + '</a>' * depth + '</message>')
        self.assertStreamError(rs, 'policy-violation')

    def test_too_deep_before_auth_policy_violation(self):
        rs = self.opened()
        depth = 40
        rs.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" + '<a>' * depth + '</a>' * depth
                + '</starttls>')
        self.assertStreamError(rs, 'policy-violation')

    def test_moderate_depth_accepted(self):
        rs = self.logged_in('depth-ok')
        depth = 10
        res = rs.iq('get', "<query xmlns='urn:example:tern:deep'>" + '<a>' * depth + '</a>' * depth
                    + '</query>', to='localhost')
        self.assertEqual(res.get('type'), 'error', rs.describe(res))
        self.assertIsNotNone(res.find('%s/%s' % (q(NS_CLIENT, 'error'), q(NS_STANZAS, 'service-unavailable'))))

    # -- stream header ----------------------------------------------------
    def test_host_unknown(self):
        rs = self.raw()
        rs.send_header(to='example.org')
        self.assertStreamError(rs, 'host-unknown')

    def test_host_unknown_direct_tls(self):
        rs = self.raw(tls_port=True)
        rs.send_header(to='not-served.example')
        self.assertStreamError(rs, 'host-unknown')

    def test_version_missing_unsupported_version(self):
        rs = self.raw()
        rs.send_header(version=None)
        self.assertStreamError(rs, 'unsupported-version')

    def test_version_2_unsupported_version(self):
        rs = self.raw()
        rs.send_header(version='2.0')
        self.assertStreamError(rs, 'unsupported-version')

    def test_version_1_x_accepted(self):
        rs = self.raw()
        f = rs.open_stream(version='1.1')
        self.assertTrue(RawStream.mechanisms(f) or f.find('{urn:ietf:params:xml:ns:xmpp-tls}starttls') is not None,
                        rs.describe(f))
        self.assertEqual(rs.stream_header.get('version'), '1.0')

    def test_wrong_stream_namespace_invalid_namespace(self):
        rs = self.raw()
        rs.send_header(stream_ns='http://example.org/not-streams')
        self.assertStreamError(rs, 'invalid-namespace')

    def test_wrong_content_namespace_invalid_namespace(self):
        rs = self.raw()
        rs.send_header(ns='urn:example:not-jabber-client')
        self.assertStreamError(rs, 'invalid-namespace')


class PreauthTimeoutTests(TernTestCase):
    TIMEOUT = 2.0
    server_config = {'limits': {'preauth_timeout': '2s'}}

    def test_unauthenticated_stream_gets_connection_timeout(self):
        t0 = time.monotonic()
        rs = self.raw()
        rs.open_stream()
        info = self.assertStreamError(rs, 'connection-timeout', timeout=self.TIMEOUT + 8)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, self.TIMEOUT - 0.5, 'timed out too early (%.2fs)' % elapsed)
        self.assertIsNotNone(info)

    def test_tls_but_unauthenticated_stream_times_out(self):
        t0 = time.monotonic()
        rs = self.raw()
        rs.open_stream()
        rs.starttls()
        rs.open_stream()
        self.assertStreamError(rs, 'connection-timeout', timeout=self.TIMEOUT + 8)
        self.assertGreaterEqual(time.monotonic() - t0, self.TIMEOUT - 0.5)

    def test_silent_connection_closed(self):
        t0 = time.monotonic()
        rs = self.raw()
        rs.read_until_closed(timeout=self.TIMEOUT + 8)
        self.assertGreaterEqual(time.monotonic() - t0, self.TIMEOUT - 0.5)

    def test_authenticated_stream_survives_preauth_timeout(self):
        t0 = time.monotonic()
        rs = self.raw()
        rs.login('alice', PW, resource='stays')
        time.sleep(max(0.0, t0 + self.TIMEOUT + 1.5 - time.monotonic()))
        res = rs.iq('get', "<ping xmlns='%s'/>" % NS_PING, to='localhost')
        self.assertEqual(res.get('type'), 'result', rs.describe(res))


class PerIpLimitTests(TernTestCase):
    LIMIT = 3
    server_config = {'limits': {'max_connections_per_ip': 3}}

    def _extra_connection_rejected(self, source_ip=None):
        rs = self.raw(source_ip=source_ip)
        # the server may refuse at once, or after our stream header
        if not rs.wait_for_data(1.0):
            rs.send_header()
        return self.assertStreamError(rs, 'policy-violation')

    def test_connections_over_limit_rejected(self):
        streams = []
        for _ in range(self.LIMIT):
            rs = self.raw()
            rs.open_stream()
            streams.append(rs)
        self._extra_connection_rejected()
        # the accepted ones still work
        for rs in streams:
            rs.starttls()
            rs.open_stream()
        # another address has its own budget
        if loopback_alias_usable('127.0.0.2'):
            other = self.raw(source_ip='127.0.0.2')
            other.open_stream()
        # closing one frees a slot (poll: the server notices the close asynchronously)
        streams.pop().close()
        deadline = time.monotonic() + 10
        while True:
            rs = self.raw()
            try:
                f = rs.open_stream(timeout=3)
                break
            except (AssertionError, StreamClosed, TimeoutError):
                rs.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.assertIsNotNone(f)


class ServerConnectionLimitTests(TernTestCase):
    LIMIT = 2
    server_config = {'limits': {'max_connections': 2}}

    def test_connections_over_server_limit_get_resource_constraint(self):
        streams = []
        for _ in range(self.LIMIT):
            rs = self.raw()
            rs.open_stream()
            streams.append(rs)
        rs = self.raw()
        if not rs.wait_for_data(1.0):
            rs.send_header()
        self.assertStreamError(rs, 'resource-constraint')
        self.assertIn('limits.max_connections', self.server.log_text())
        # the accepted ones still work
        for rs in streams:
            rs.starttls()
            rs.open_stream()


if __name__ == '__main__':
    unittest.main()
