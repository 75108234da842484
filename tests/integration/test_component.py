"""External components (XEP-0114, jabber:component:accept): the handshake,
routing between components and local users, the server's own IQs, disco,
bounces while a component is away, and shutdown.

Components are driven by Component, a raw-socket client in this file (so
every byte on the wire can be asserted on), and once by slixmpp's
ComponentXMPP to check that a real component library gets along with us.
"""

import asyncio
import hashlib
import signal
import time
import unittest

from harness import (NS_PING, NS_STANZAS, NS_STREAM, NS_STREAMS, TIMEOUT, RawStream, StreamErrorReceived, TernServer,
                     deep_merge, find_stream_error, free_port, local_name, q, run_async)
from test_chat_common import NS_DISCO_INFO, NS_DISCO_ITEMS, QUIET, ChatTestCase, M, xml

NS_COMPONENT = 'jabber:component:accept'

PUSH, PUSH_SECRET = 'push.localhost', 's3cret'
OTHER, OTHER_SECRET = 'other.localhost', 'other-secret'
AWAY = 'away.localhost'   # configured, never connected
COMPONENTS = {PUSH: PUSH_SECRET, OTHER: OTHER_SECRET, AWAY: 'away-secret'}

PING = "<ping xmlns='%s'/>" % NS_PING


def K(local):
    """A jabber:component:accept element name."""
    return q(NS_COMPONENT, local)


def handshake_digest(stream_id, secret):
    return hashlib.sha1((stream_id + secret).encode('utf-8')).hexdigest()


class ComponentServer(TernServer):
    """A TernServer whose component listener has a free port of its own."""

    def build_config(self):
        self.component_port = free_port()
        while self.component_port in (self.c2s_port, self.c2s_tls_port):
            self.component_port = free_port()
        return deep_merge(super().build_config(),
                          {'component': {'address': '127.0.0.1', 'port': self.component_port}})


class Component:
    """A raw XEP-0114 component: RawStream with the component namespace and
    an inbox of received top-level elements."""

    def __init__(self, tc, domain=PUSH, port=None):
        self.tc = tc
        self.domain = domain
        self.rs = RawStream(port or tc.server.component_port)
        tc.addCleanup(self.rs.close)
        self.inbox = []

    def open(self, to=None):
        """Send our header and wait for the server's; returns its attributes."""
        self.rs.send_header(to=to or self.domain, ns=NS_COMPONENT, version=None, lang=None,
                            xml_decl=False)
        self.rs.read_until(r'<stream:stream\b[^>]*>')
        deadline = time.monotonic() + TIMEOUT
        while self.rs.stream_header is None and time.monotonic() < deadline:
            self.rs._recv(0.05)
        return self.rs.stream_header

    def handshake(self, secret):
        """Send the handshake for our stream id; returns the answer element
        (raises StreamErrorReceived on a stream error)."""
        sid = self.rs.stream_header['id']
        self.rs.send('<handshake>%s</handshake>' % handshake_digest(sid, secret))
        return self.rs.next_element()

    def connect(self, secret=None):
        """open + a successful handshake."""
        self.open()
        el = self.handshake(secret or COMPONENTS[self.domain])
        if el.tag != K('handshake') or len(el) or (el.text or '').strip():
            raise AssertionError('expected an empty <handshake/>, got %s' % xml(el))
        return self

    def send(self, data):
        self.rs.send(data)
        return self

    def expect(self, pred, timeout=TIMEOUT, what=None):
        deadline = time.monotonic() + timeout
        while True:
            for i, el in enumerate(self.inbox):
                if pred(el):
                    del self.inbox[i]
                    return el
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('%s did not receive %s within %.1fs; inbox:\n  %s\nlast bytes:\n%s'
                                     % (self.domain, what or getattr(pred, 'desc', 'the stanza'),
                                        timeout, '\n  '.join(xml(e) for e in self.inbox) or '(empty)',
                                        self.rs.text[-1500:]))
            try:
                self.inbox.append(self.rs.next_element(left))
            except TimeoutError:
                pass

    def expect_none(self, pred, wait=QUIET):
        deadline = time.monotonic() + wait
        while True:
            for el in self.inbox:
                if pred(el):
                    raise AssertionError('%s unexpectedly received %s' % (self.domain, xml(el)))
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                self.inbox.append(self.rs.next_element(left))
            except TimeoutError:
                pass

    def iq(self, type_, payload, frm, to, id_):
        self.send("<iq type='%s' id='%s' from='%s' to='%s'>%s</iq>" % (type_, id_, frm, to, payload))
        return self.expect(KM('iq', type=('result', 'error'), id=id_), what='the reply to %s' % id_)


def kerror(el):
    """(error type, defined condition) of an error stanza in the component namespace."""
    err = el.find(K('error'))
    if err is None:
        return None, None
    conds = [local_name(c.tag) for c in err
             if c.tag.startswith('{%s}' % NS_STANZAS) and local_name(c.tag) != 'text']
    return err.get('type'), conds[0] if conds else None


def KM(kind, body=None, **kw):
    """M(...) for the component namespace."""
    inner = M(None, **kw)

    def pred(el):
        return el.tag == K(kind) and inner(el) and (body is None or el.findtext(K('body')) == body)
    pred.desc = '%s %s%s' % (kind, inner.desc, '' if body is None else ' body=%r' % body)
    return pred


class ComponentTestCase(ChatTestCase):
    server_config = {'components': COMPONENTS}

    @classmethod
    def setUpClass(cls):
        cls.server = ComponentServer(cls.server_config, name=cls.__name__)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()

    def component(self, domain=PUSH):
        return Component(self, domain)


class HandshakeTests(ComponentTestCase):

    def test_handshake_ok(self):
        c = self.component()
        header = c.open()
        self.assertEqual(c.rs.stream_tag, q(NS_STREAM, 'stream'))
        self.assertEqual(header.get('from'), PUSH, c.rs.text)
        self.assertTrue(header.get('id'), c.rs.text)
        self.assertRegex(c.rs.text, r"xmlns=['\"]%s['\"]" % NS_COMPONENT)
        el = c.handshake(PUSH_SECRET)
        self.assertEqual(el.tag, K('handshake'), xml(el))
        self.assertEqual(len(el), 0, xml(el))
        self.assertFalse((el.text or '').strip(), xml(el))
        self.assertIn('component %s connected' % PUSH, self.server.log_text())

    def test_handshake_digest_case_and_domain_case(self):
        # the digest is hex (either case) and the header's 'to' is a domain (any case)
        c = self.component()
        c.open(to=PUSH.upper())
        self.assertEqual(c.rs.stream_header.get('from'), PUSH)
        sid = c.rs.stream_header['id']
        c.send('<handshake> %s </handshake>' % handshake_digest(sid, PUSH_SECRET).upper())
        self.assertEqual(c.rs.next_element().tag, K('handshake'))

    def test_each_stream_has_its_own_id(self):
        ids = set()
        for _ in range(3):
            c = self.component()
            ids.add(c.open()['id'])
            c.rs.close()
        self.assertEqual(len(ids), 3, ids)

    def test_wrong_secret_not_authorized(self):
        c = self.component()
        c.open()
        with self.assertRaises(StreamErrorReceived) as cm:
            c.handshake('not-the-secret')
        self.assertEqual(cm.exception.condition, 'not-authorized')
        self.assertStreamError(c.rs, 'not-authorized')

    def test_secret_of_another_component_not_authorized(self):
        c = self.component(PUSH)
        c.open()
        with self.assertRaises(StreamErrorReceived) as cm:
            c.handshake(OTHER_SECRET)
        self.assertEqual(cm.exception.condition, 'not-authorized')

    def test_digest_of_another_stream_id_not_authorized(self):
        c = self.component()
        c.open()
        c.send('<handshake>%s</handshake>' % handshake_digest('0123456789abcdef01234567', PUSH_SECRET))
        self.assertStreamError(c.rs, 'not-authorized')

    def test_unknown_domain_host_unknown(self):
        c = self.component()
        header = c.open(to='nope.localhost')
        self.assertIsNotNone(header)
        self.assertStreamError(c.rs, 'host-unknown')

    def test_server_domain_is_not_a_component(self):
        c = self.component()
        c.open(to='localhost')
        self.assertStreamError(c.rs, 'host-unknown')

    def test_missing_to_host_unknown(self):
        c = self.component()
        c.rs.send("<stream:stream xmlns='%s' xmlns:stream='%s'>" % (NS_COMPONENT, NS_STREAM))
        self.assertStreamError(c.rs, 'host-unknown')

    def test_client_namespace_refused(self):
        c = self.component()
        c.rs.send_header(to=PUSH, version=None)   # jabber:client
        self.assertStreamError(c.rs, 'invalid-namespace')

    def test_stanza_before_handshake_not_authorized(self):
        c = self.component()
        c.open()
        c.send("<message from='x@%s' to='u@localhost'><body>hi</body></message>" % PUSH)
        self.assertStreamError(c.rs, 'not-authorized')

    def test_second_connection_replaces_the_first(self):
        u = self.peer(self.new_user('cr'), 'r')
        first = self.component().connect()
        second = self.component().connect()
        info = self.assertStreamError(first.rs, 'conflict')
        self.assertTrue(info.stream_closed_tag)
        # the domain is the second stream's now
        u.message('bot@%s' % PUSH, 'to the new one')
        second.expect(KM('message', frm=u.jid, body='to the new one'))

    def test_client_port_does_not_take_components(self):
        rs = self.raw()
        rs.send_header(to=PUSH, ns=NS_COMPONENT, version=None)
        self.assertStreamError(rs, 'invalid-namespace')


class RoutingTests(ComponentTestCase):

    def test_client_message_reaches_component(self):
        u = self.peer(self.new_user('cm'), 'phone')
        c = self.component().connect()
        u.message('anything@%s' % PUSH, 'hello component', id_='m1')
        el = c.expect(KM('message', id='m1'))
        self.assertEqual(el.get('from'), u.jid, xml(el))
        self.assertEqual(el.get('to'), 'anything@%s' % PUSH, xml(el))
        self.assertEqual(el.findtext(K('body')), 'hello component', xml(el))
        # on the wire: no jabber:client leaks into the component's stream
        self.assertNotIn('jabber:client', c.rs.text)

    def test_client_message_to_component_domain_and_resource(self):
        u = self.peer(self.new_user('cd'), 'r')
        c = self.component().connect()
        for to in (PUSH, PUSH + '/res', 'x@%s/res' % PUSH):
            with self.subTest(to=to):
                mid = u.message(to, 'to ' + to)
                el = c.expect(KM('message', id=mid))
                self.assertEqual(el.get('to'), to)

    def test_component_message_to_local_user(self):
        u = self.peer(self.new_user('cu'), 'r', available=True)
        c = self.component().connect()
        c.send("<message from='bot@%s/x' to='%s' type='chat' id='c1'><body>from the bot</body></message>"
               % (PUSH, u.bare))
        el = u.expect(M('message', id='c1'))
        self.assertEqual(el.get('from'), 'bot@%s/x' % PUSH, xml(el))
        self.assertEqual(el.findtext(q('jabber:client', 'body')), 'from the bot', xml(el))
        # and to a full JID, from the bare component domain
        c.send("<message from='%s' to='%s' type='chat' id='c2'><body>full</body></message>"
               % (PUSH, u.jid))
        el = u.expect(M('message', id='c2'))
        self.assertEqual(el.get('from'), PUSH, xml(el))

    def test_component_message_to_offline_user_is_stored(self):
        acc = self.new_user('co')
        c = self.component().connect()
        c.send("<message from='bot@%s' to='%s@localhost' type='chat' id='off1'><body>later</body></message>"
               % (PUSH, acc[0]))
        c.expect_none(KM('message', type='error'))
        u = self.peer(acc, 'r')
        u.available()
        el = u.expect(M('message', id='off1'))
        self.assertEqual(el.get('from'), 'bot@%s' % PUSH, xml(el))

    def test_component_iq_to_full_jid_and_reply(self):
        u = self.peer(self.new_user('ci'), 'r')
        c = self.component().connect()
        c.send("<iq type='get' id='q1' from='%s' to='%s'>%s</iq>" % (PUSH, u.jid, PING))
        el = u.expect(M('iq', type='get', id='q1'))
        self.assertEqual(el.get('from'), PUSH, xml(el))
        self.assertIsNotNone(el.find(q(NS_PING, 'ping')), xml(el))
        u.send("<iq type='result' id='q1' to='%s'/>" % PUSH)
        r = c.expect(KM('iq', type='result', id='q1'))
        self.assertEqual(r.get('from'), u.jid, xml(r))
        self.assertEqual(r.get('to'), PUSH, xml(r))

    def test_client_iq_to_component_and_reply(self):
        u = self.peer(self.new_user('cq'), 'r')
        c = self.component().connect()
        u.send("<iq type='get' id='v1' to='%s'><query xmlns='jabber:iq:version'/></iq>" % PUSH)
        el = c.expect(KM('iq', type='get', id='v1'))
        self.assertEqual(el.get('from'), u.jid)
        c.send("<iq type='result' id='v1' from='%s' to='%s'><query xmlns='jabber:iq:version'>"
               "<name>push</name></query></iq>" % (PUSH, u.jid))
        r = u.expect(M('iq', type='result', id='v1'))
        self.assertEqual(r.get('from'), PUSH, xml(r))
        self.assertEqual(r.findtext('{jabber:iq:version}query/{jabber:iq:version}name'), 'push')

    def test_component_iq_to_gone_resource_service_unavailable(self):
        acc = self.new_user('cg')
        c = self.component().connect()
        r = c.iq('get', PING, PUSH, '%s@localhost/nope' % acc[0], 'g1')
        self.assertEqual(kerror(r), ('cancel', 'service-unavailable'), xml(r))

    def test_component_iq_to_server(self):
        c = self.component().connect()
        r = c.iq('get', PING, 'x@%s' % PUSH, 'localhost', 's1')
        self.assertEqual(r.get('type'), 'result', xml(r))
        self.assertEqual(r.get('from'), 'localhost', xml(r))
        self.assertEqual(r.get('to'), 'x@%s' % PUSH, xml(r))
        r = c.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, PUSH, 'localhost', 's2')
        self.assertEqual(r.get('type'), 'result', xml(r))
        feats = {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}
        self.assertIn(NS_DISCO_INFO, feats, xml(r))
        r = c.iq('get', "<query xmlns='urn:example:nothing'/>", PUSH, 'localhost', 's3')
        self.assertEqual(kerror(r), ('cancel', 'service-unavailable'), xml(r))
        # the roster belongs to accounts, not to components
        r = c.iq('get', "<query xmlns='jabber:iq:roster'/>", PUSH, 'localhost', 's4')
        self.assertEqual(r.get('type'), 'error', xml(r))

    def test_component_iq_to_account(self):
        acc = self.new_user('ca')
        c = self.component().connect()
        r = c.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, PUSH, '%s@localhost' % acc[0], 'a1')
        self.assertEqual(r.get('type'), 'result', xml(r))
        self.assertEqual(r.get('from'), '%s@localhost' % acc[0], xml(r))
        r = c.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, PUSH, 'nobody-here@localhost', 'a2')
        self.assertEqual(kerror(r), ('cancel', 'service-unavailable'), xml(r))

    def test_component_to_component(self):
        push = self.component(PUSH).connect()
        other = self.component(OTHER).connect()
        push.send("<message from='a@%s' to='b@%s' id='cc1'><body>x</body></message>" % (PUSH, OTHER))
        el = other.expect(KM('message', id='cc1'))
        self.assertEqual(el.get('from'), 'a@%s' % PUSH)
        # to a configured component that is not connected: bounced
        push.send("<message from='a@%s' to='b@%s' id='cc2'><body>x</body></message>" % (PUSH, AWAY))
        err = push.expect(KM('message', id='cc2', type='error'))
        self.assertEqual(kerror(err), ('cancel', 'service-unavailable'), xml(err))

    def test_component_to_unknown_domain_remote_server_not_found(self):
        c = self.component().connect()
        c.send("<message from='a@%s' to='x@elsewhere.example' id='u1'><body>x</body></message>" % PUSH)
        err = c.expect(KM('message', id='u1', type='error'))
        self.assertEqual(kerror(err), ('cancel', 'remote-server-not-found'), xml(err))
        self.assertEqual(err.get('to'), 'a@%s' % PUSH)

    def test_component_message_to_server_domain_service_unavailable(self):
        c = self.component().connect()
        c.send("<message from='a@%s' to='localhost' id='d1'><body>x</body></message>" % PUSH)
        err = c.expect(KM('message', id='d1', type='error'))
        self.assertEqual(kerror(err), ('cancel', 'service-unavailable'), xml(err))

    def test_component_malformed_to_jid_malformed(self):
        c = self.component().connect()
        c.send("<message from='a@%s' to='a@b@c' id='j1'><body>x</body></message>" % PUSH)
        err = c.expect(KM('message', id='j1', type='error'))
        self.assertEqual(kerror(err), ('modify', 'jid-malformed'), xml(err))

    def test_component_from_other_domain_invalid_from(self):
        for frm in ('x@localhost', OTHER, 'x@%s' % OTHER, 'x@sub.%s' % PUSH, 'a@b@c'):
            with self.subTest(frm=frm):
                c = self.component().connect()
                c.send("<message from='%s' to='u@localhost'><body>x</body></message>" % frm)
                self.assertStreamError(c.rs, 'invalid-from')

    def test_component_stanza_without_to_or_from(self):
        for stanza in ("<message from='a@%s'><body>x</body></message>" % PUSH,
                       "<message to='u@localhost'><body>x</body></message>"):
            with self.subTest(stanza=stanza):
                c = self.component().connect()
                c.send(stanza)
                self.assertStreamError(c.rs, 'improper-addressing')

    def test_component_unknown_element_unsupported_stanza_type(self):
        c = self.component().connect()
        c.send("<foo xmlns='urn:example'/>")
        self.assertStreamError(c.rs, 'unsupported-stanza-type')

    def test_component_closes_stream(self):
        c = self.component().connect()
        c.send('</stream:stream>')
        c.rs.read_until_closed()
        self.assertTrue(c.rs.stream_ended, c.rs.text)
        # and a message to it bounces again
        u = self.peer(self.new_user('cz'), 'r')
        wait_until_ok(lambda: 'component %s disconnected' % PUSH in self.server.log_text())
        mid = u.message('x@%s' % PUSH, 'anyone?')
        err = u.expect(M('message', id=mid, type='error'))
        self.assertStanzaError(err, 'service-unavailable', 'cancel')

    def test_component_stream_error_ends_the_stream_quietly(self):
        c = self.component().connect()
        c.send("<stream:error><undefined-condition xmlns='%s'/></stream:error></stream:stream>"
               % NS_STREAMS)
        c.rs.read_until_closed()
        self.assertIsNone(find_stream_error(c.rs.text), c.rs.text)
        self.assertTrue(c.rs.stream_ended, c.rs.text)
        wait_until_ok(lambda: 'sent stream error <undefined-condition/>' in self.server.log_text())

    def test_component_too_large_stanza_policy_violation(self):
        c = self.component().connect()
        c.send("<message from='a@%s' to='u@localhost'><body>%s</body></message>"
               % (PUSH, 'x' * (300 * 1024)))
        self.assertStreamError(c.rs, 'policy-violation')


def wait_until_ok(pred, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError('condition not met within %.1fs' % timeout)
        time.sleep(0.02)


class NotConnectedTests(ComponentTestCase):

    def test_message_to_absent_component_service_unavailable(self):
        u = self.peer(self.new_user('na'), 'r')
        mid = u.message('x@%s' % AWAY, 'anyone there?')
        err = u.expect(M('message', id=mid, type='error'))
        self.assertStanzaError(err, 'service-unavailable', 'cancel')
        self.assertEqual(err.get('from'), 'x@%s' % AWAY, xml(err))

    def test_iq_to_absent_component_service_unavailable(self):
        u = self.peer(self.new_user('ni'), 'r')
        r = u.iq('get', PING, to=AWAY)
        self.assertStanzaError(r, 'service-unavailable', 'cancel')
        # answers are never bounced
        u.send("<iq type='result' id='nothing' to='%s'/>" % AWAY)
        u.quiet(M('iq', id='nothing'))

    def test_unknown_domain_still_remote_server_not_found(self):
        u = self.peer(self.new_user('nu'), 'r')
        mid = u.message('x@unknown.localhost', 'hello?')
        err = u.expect(M('message', id=mid, type='error'))
        self.assertStanzaError(err, 'remote-server-not-found', 'cancel')

    def test_disco_items_lists_components(self):
        u = self.peer(self.new_user('nd'), 'r')
        r = u.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to='localhost')
        self.assertResult(r)
        items = [i.get('jid') for i in r.iter(q(NS_DISCO_ITEMS, 'item'))]
        self.assertEqual(sorted(items), sorted(COMPONENTS), xml(r))
        # an account has no such items
        r = u.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=u.bare)
        self.assertResult(r)
        self.assertEqual(list(r.iter(q(NS_DISCO_ITEMS, 'item'))), [], xml(r))


class SlixComponentTests(ComponentTestCase):

    def test_slixmpp_component_exchanges_messages(self):
        import slixmpp
        u = self.peer(self.new_user('sx'), 'r', available=True)
        got = []

        async def go():
            comp = slixmpp.ComponentXMPP(OTHER, OTHER_SECRET, '127.0.0.1', self.server.component_port)
            started = asyncio.Event()
            comp.add_event_handler('session_start', lambda _: started.set())
            comp.add_event_handler('message', lambda m: got.append(m))
            comp.connect()
            try:
                await asyncio.wait_for(started.wait(), TIMEOUT)
                comp.send_message(mto=u.bare, mfrom='bot@%s' % OTHER, mbody='from slixmpp', mtype='chat')
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, lambda: u.expect(M('message', frm='bot@%s' % OTHER,
                                                                    body='from slixmpp')))
                u.message('bot@%s' % OTHER, 'to slixmpp')
                deadline = time.monotonic() + TIMEOUT
                while not got and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            finally:
                comp.disconnect()
                await asyncio.sleep(0.1)
        run_async(go())
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]['body'], 'to slixmpp')
        self.assertEqual(str(got[0]['from']), u.jid)


class OwnServerTests(unittest.TestCase):
    """Tests that need a server of their own (shutdown, tight limits)."""

    def start(self, components=COMPONENTS, **config):
        if components:
            config['components'] = components
        srv = ComponentServer(config, name='component-own')
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def test_handshake_timeout(self):
        srv = self.start(limits={'preauth_timeout': 1})
        c = Component(self, PUSH, srv.component_port)
        c.open()
        info = c.rs.expect_stream_error(timeout=TIMEOUT)
        self.assertEqual(info.condition, 'connection-timeout', c.rs.text)
        # an authenticated component is not timed out
        ok = Component(self, PUSH, srv.component_port).connect()
        self.assertFalse(ok.rs.wait_for_data(1.5), ok.rs.text)

    def test_failed_handshakes_ban_the_address(self):
        srv = self.start(auth={'max_failures': 2, 'failure_window': '1m', 'ban_time': '1m'})
        for i in range(2):
            c = Component(self, PUSH, srv.component_port)
            c.open()
            with self.assertRaises(StreamErrorReceived) as cm:
                c.handshake('wrong-%d' % i)
            self.assertEqual(cm.exception.condition, 'not-authorized')
        # now even the right secret is refused from this address
        c = Component(self, PUSH, srv.component_port)
        c.open()
        with self.assertRaises(StreamErrorReceived) as cm:
            c.handshake(PUSH_SECRET)
        self.assertEqual(cm.exception.condition, 'policy-violation')
        self.assertIn('too many failed authentications from 127.0.0.1', srv.log_text())

    def test_sigterm_system_shutdown(self):
        srv = self.start()
        connected = Component(self, PUSH, srv.component_port)
        connected.connect()
        pending = Component(self, OTHER, srv.component_port)
        pending.open()
        srv.signal(signal.SIGTERM)
        for name, c in (('connected', connected), ('before the handshake', pending)):
            with self.subTest(component=name):
                info = c.rs.expect_stream_error()
                self.assertEqual(info.condition, 'system-shutdown', c.rs.text)
                self.assertTrue(info.stream_closed_tag, c.rs.text)
        self.assertEqual(srv.wait(timeout=TIMEOUT), 0, srv.log_tail())
        # and the listener is gone
        with self.assertRaises(OSError):
            RawStream(srv.component_port, timeout=2).close()

    def test_no_components_no_listener(self):
        srv = self.start(components=None)
        with self.assertRaises(OSError):
            RawStream(srv.component_port, timeout=2).close()
        self.assertIn('components off (0)', srv.log_text())


if __name__ == '__main__':
    unittest.main()
