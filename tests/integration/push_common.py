"""Shared helpers of the push notification suites (test_push*.py); no tests.

* Component      - an external component (XEP-0114) acting as an XEP-0357
                   "app server": it connects to ternd's component port,
                   does the handshake, records every stanza it receives
                   (the pubsub publishes in particular) and answers each IQ
                   with a result, a chosen error, or nothing at all, as the
                   test decides per pubsub node.  It runs in its own thread
                   and reconnects by itself when ternd restarts.
* parse_publish  - the interesting parts of a publish IQ as a dict.
* PushTestCase   - SMTestCase (test_sm_common) with a component port, the
                   components of `component_domains` connected for the whole
                   class, and enable/disable helpers.
"""

import hashlib
import itertools
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET

from harness import TIMEOUT, deep_merge, free_port, local_name, q
from test_chat_common import NS_DISCO_INFO, esc, xml
from test_sm_common import SMTestCase

NS_COMPONENT = 'jabber:component:accept'
NS_STREAM = 'http://etherx.jabber.org/streams'
NS_PUSH = 'urn:xmpp:push:0'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_DATA = 'jabber:x:data'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_JMI = 'urn:xmpp:jingle-message:0'
NS_OMEMO_LEGACY = 'eu.siacs.conversations.axolotl'
SUMMARY = 'urn:xmpp:push:summary'
PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options'

PUSH_JID = 'push.localhost'
PUSH_SECRET = 'comp-secret-1'
PUSH2_JID = 'push2.localhost'
PUSH2_SECRET = 'comp-secret-2'
PUSH3_JID = 'push3.localhost'
PUSH3_SECRET = 'comp-secret-3'
PLACEHOLDER = 'New message'

# actions a component may take on an IQ
RESULT = 'result'
IGNORE = 'ignore'                                  # no answer at all


def error(type_, condition):
    return ('error', type_, condition)


WAIT_ERROR = error('wait', 'resource-constraint')
CANCEL_ERROR = error('cancel', 'item-not-found')


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

def form_fields(x):
    """{var: [values]} of a jabber:x:data form (None -> {})."""
    out = {}
    if x is None:
        return out
    for f in x.findall(q(NS_DATA, 'field')):
        out.setdefault(f.get('var'), []).extend((v.text or '') for v in f.findall(q(NS_DATA, 'value')))
    return out


def parse_publish(iq):
    """A publish IQ -> dict(node, frm, to, id, type, summary, options, raw)
    where summary / options are the {var: [values]} of the notification form
    and of the publish-options form (None if the element is missing).
    Returns None if iq is not a pubsub publish."""
    ps = iq.find(q(NS_PUBSUB, 'pubsub'))
    if ps is None:
        return None
    pub = ps.find(q(NS_PUBSUB, 'publish'))
    if pub is None:
        return None
    out = {'node': pub.get('node'), 'frm': iq.get('from'), 'to': iq.get('to'), 'id': iq.get('id'),
           'type': iq.get('type'), 'raw': ET.tostring(iq, encoding='unicode'),
           'summary': None, 'summary_form': None, 'options': None, 'notification': None}
    items = pub.findall(q(NS_PUBSUB, 'item'))
    out['n_items'] = len(items)
    notif = items[0].find(q(NS_PUSH, 'notification')) if items else None
    out['notification'] = notif
    if notif is not None:
        x = notif.find(q(NS_DATA, 'x'))
        out['summary_form'] = x
        if x is not None:
            out['summary'] = form_fields(x)
    po = ps.find(q(NS_PUBSUB, 'publish-options'))
    if po is not None:
        out['options'] = form_fields(po.find(q(NS_DATA, 'x')))
    return out


def one(fields, var):
    """The single value of a form field (None if absent)."""
    v = (fields or {}).get(var)
    if not v:
        return None
    return v[0]


# --------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------

class Component:
    """An XEP-0114 component in a background thread.

        comp = Component(port, 'push.localhost', 'secret').start()
        comp.set_actions('node1', [CANCEL_ERROR, RESULT])   # per publish, in order
        comp.set_default('node2', IGNORE)                   # after the list is used up
        pubs = comp.wait_publishes('node1', 2)
        comp.stop()

    Every IQ get/set whose payload is a pubsub publish is answered according
    to the actions of its node (default RESULT); any other IQ get/set gets a
    result (disco#info: identity pubsub/push).  self.received holds every
    stanza received (time, element); self.wire the raw text both ways."""

    def __init__(self, port, domain, secret, host='127.0.0.1', reconnect=True):
        self.port = port
        self.domain = domain
        self.secret = secret
        self.host = host
        self.reconnect = reconnect
        self.cond = threading.Condition()
        self.received = []          # (monotonic time, element)
        self.answered = []          # (monotonic time, iq id, action)
        self.wire = []              # (monotonic time, 'in'/'out'/'note', text)
        self.actions = {}           # node -> list of actions still to use
        self.defaults = {}          # node -> action once the list is used up
        self.default_action = RESULT
        self.handshakes = 0         # successful handshakes so far
        self.connected = False
        self.handshake_error = None
        self._stop = False
        self._send_lock = threading.Lock()
        self._sock = None
        self._thread = None

    # -- control ------------------------------------------------------------
    def start(self, timeout=TIMEOUT):
        self._thread = threading.Thread(target=self._run, name='component-%s' % self.domain, daemon=True)
        self._thread.start()
        self.wait_connected(timeout, after=0)
        return self

    def stop(self):
        self._stop = True
        s = self._sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    def wait_connected(self, timeout=TIMEOUT, after=None):
        """Wait until a handshake newer than `after` (a handshakes count;
        default: the current one, i.e. wait for a reconnection) succeeded."""
        if after is None:
            after = self.handshakes
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (self.connected and self.handshakes > after):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('component %s not connected within %.1fs (handshakes=%d, '
                                         'error=%s)\n%s' % (self.domain, timeout, self.handshakes,
                                                            self.handshake_error, self.transcript()))
                self.cond.wait(min(left, 0.1))

    def set_actions(self, node, actions, default=None):
        with self.cond:
            self.actions[node] = list(actions)
            if default is not None:
                self.defaults[node] = default

    def set_default(self, node, action):
        with self.cond:
            self.defaults[node] = action

    # -- inspection ----------------------------------------------------------
    def publishes(self, node=None):
        """Parsed publishes received so far (for node, or all), in order."""
        with self.cond:
            els = [(t, el) for t, el in self.received if local_name(el.tag) == 'iq']
        out = []
        for t, el in els:
            p = parse_publish(el)
            if p is not None and (node is None or p['node'] == node):
                p['time'] = t
                out.append(p)
        return out

    def wait_publishes(self, node, n=1, timeout=TIMEOUT, what=None):
        """Wait until at least n publishes for node arrived; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.publishes(node)
            if len(got) >= n:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('%s: %s within %.1fs (got %d publishes for node %r)\n%s'
                                     % (self.domain, what or 'no %d publish(es) for node %r' % (n, node),
                                        timeout, len(got), node, self.transcript()))
            with self.cond:
                self.cond.wait(min(left, 0.05))

    def expect_no_more(self, node, n, wait, what=None):
        """During `wait` seconds the number of publishes for node stays n."""
        deadline = time.monotonic() + wait
        while True:
            got = self.publishes(node)
            if len(got) > n:
                raise AssertionError('%s: %s: %d publishes for node %r, expected %d\n%s'
                                     % (self.domain, what or 'unexpected publish', len(got), node, n,
                                        self.transcript()))
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            with self.cond:
                self.cond.wait(min(left, 0.05))

    def send_raw(self, text):
        """Send text on the current connection (AssertionError if none)."""
        s = self._sock
        if s is None or not self.connected:
            raise AssertionError('component %s not connected' % self.domain)
        self._send(s, text)

    def barrier(self, timeout=2.0):
        """Best effort ordering point: a ping from the component to the
        server; once any answer to it arrives, everything the component sent
        before was processed by ternd.  Returns the answer element, or None
        if none came within timeout (a server that ignores component pings
        makes this a bounded wait)."""
        self._barriers = getattr(self, '_barriers', 0) + 1
        bid = 'cb-%s-%d' % (self.domain, self._barriers)
        self.send_raw("<iq type='get' id='%s' from='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
                      % (bid, self.domain))
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for _, el in self.received:
                    if local_name(el.tag) == 'iq' and el.get('id') == bid:
                        return el
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.05))

    def transcript(self, chars=6000):
        with self.cond:
            lines = ['%s %s %s' % ('%.3f' % t, d, s) for t, d, s in self.wire]
        text = '\n'.join(lines)
        return '--- component %s wire ---\n%s' % (self.domain, text[-chars:] or '(nothing)')

    # -- thread ----------------------------------------------------------------
    def _note(self, direction, text):
        with self.cond:
            self.wire.append((time.monotonic(), direction, text))

    def _send(self, sock, text):
        with self._send_lock:
            self._note('out', text)
            sock.sendall(text.encode('utf-8'))

    def _run(self):
        while not self._stop:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2)
            except OSError:
                if not self.reconnect:
                    return
                time.sleep(0.05)
                continue
            self._sock = sock
            try:
                self._session(sock)
            except Exception as e:           # noqa: BLE001 - recorded for the report
                self._note('note', 'session ended: %r' % e)
            finally:
                with self.cond:
                    self.connected = False
                    self.cond.notify_all()
                try:
                    sock.close()
                except OSError:
                    pass
                self._sock = None
            if not self.reconnect:
                return
            time.sleep(0.05)

    def _session(self, sock):
        parser = ET.XMLPullParser(events=('start', 'end'))
        depth = 0
        root = None
        sock.settimeout(0.1)
        self._send(sock, "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s'>"
                   % (NS_COMPONENT, NS_STREAM, self.domain))
        authed = False
        while not self._stop:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                self._note('note', 'recv error %r' % e)
                return
            if not chunk:
                self._note('note', 'EOF')
                return
            self._note('in', chunk.decode('utf-8', 'replace'))
            parser.feed(chunk)
            for ev, el in parser.read_events():
                if ev == 'start':
                    if depth == 0:
                        root = el
                        sid = el.get('id')
                        if sid is None:
                            self.handshake_error = 'stream header without id'
                        else:
                            digest = hashlib.sha1((sid + self.secret).encode('utf-8')).hexdigest()
                            self._send(sock, '<handshake>%s</handshake>' % digest)
                    depth += 1
                elif ev == 'end':
                    depth -= 1
                    if depth == 0:
                        self._note('note', 'stream closed by the server')
                        return
                    if depth != 1:
                        continue
                    try:
                        root.remove(el)
                    except ValueError:
                        pass
                    if local_name(el.tag) == 'handshake' and not authed:
                        authed = True
                        with self.cond:
                            self.handshakes += 1
                            self.connected = True
                            self.cond.notify_all()
                        continue
                    if el.tag == q(NS_STREAM, 'error'):
                        self.handshake_error = xml(el)
                        continue
                    with self.cond:
                        self.received.append((time.monotonic(), el))
                        self.cond.notify_all()
                    self._handle(sock, el)

    def _action_for(self, el):
        p = parse_publish(el)
        if p is None:
            return RESULT, None
        node = p['node']
        with self.cond:
            lst = self.actions.get(node)
            if lst:
                return lst.pop(0), node
            return self.defaults.get(node, self.default_action), node

    def _handle(self, sock, el):
        if local_name(el.tag) != 'iq' or el.get('type') not in ('get', 'set'):
            return
        action, node = self._action_for(el)
        with self.cond:
            self.answered.append((time.monotonic(), el.get('id'), action))
        if action == IGNORE:
            self._note('note', 'not answering iq %s (node %s)' % (el.get('id'), node))
            return
        attrs = "id='%s' from='%s' to='%s'" % (esc(el.get('id') or ''), esc(el.get('to') or self.domain),
                                             esc(el.get('from') or ''))
        if action == RESULT:
            payload = ''
            if el.find(q(NS_DISCO_INFO, 'query')) is not None:
                payload = ("<query xmlns='%s'><identity category='pubsub' type='push'/>"
                           "<feature var='%s'/></query>" % (NS_DISCO_INFO, NS_PUSH))
            self._send(sock, "<iq type='result' %s>%s</iq>" % (attrs, payload))
        else:
            _, etype, cond = action
            self._send(sock, "<iq type='error' %s><error type='%s'><%s xmlns='%s'/></error></iq>"
                       % (attrs, etype, cond, NS_STANZAS))


def raw_component_handshake(port, domain, secret, timeout=TIMEOUT):
    """One-shot component login on a plain socket; returns the whole text
    the server sent until it closed the connection or answered the
    handshake (whichever first)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    text = ''
    try:
        s.sendall(("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s'>"
                   % (NS_COMPONENT, NS_STREAM, domain)).encode())
        deadline = time.monotonic() + timeout
        sent = False
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            text += chunk.decode('utf-8', 'replace')
            m = re.search(r"<stream:stream\b[^>]*\bid=['\"]([^'\"]+)['\"]", text)
            if m and not sent:
                sent = True
                digest = hashlib.sha1((m.group(1) + secret).encode()).hexdigest()
                s.sendall(('<handshake>%s</handshake>' % digest).encode())
            if re.search(r'<handshake\s*/>|<handshake>\s*</handshake>', text):
                break
    finally:
        s.close()
    return text


# --------------------------------------------------------------------------
# Test case
# --------------------------------------------------------------------------

def push_form(secret='s', form_type=PUBLISH_OPTIONS, extra_fields=()):
    fields = [('FORM_TYPE', form_type)] if form_type is not None else []
    if secret is not None:
        fields.append(('secret', secret))
    fields.extend(extra_fields)
    return ("<x xmlns='%s' type='submit'>%s</x>" % (NS_DATA, ''.join(
        "<field var='%s'><value>%s</value></field>" % (esc(k), esc(v)) for k, v in fields)))


def is_publish_from_server(p, domain='localhost'):
    return p['frm'] == domain and p['type'] == 'set'


class PushTestCase(SMTestCase):
    """One ternd per class with the component port and push settings
    (push_config overrides BASE_PUSH), and one connected Component per
    domain of `component_domains` (self.comp is the first)."""

    component_domains = {PUSH_JID: PUSH_SECRET}
    push_config = {}
    extra_config = {}
    BASE_PUSH = {'max_devices': 5, 'max_errors': 2, 'timeout': '2s', 'include_sender': False,
                 'include_body': False, 'body_placeholder': PLACEHOLDER, 'ack_delay': '2s',
                 'max_queue': 10000}
    BASE_SM = {'enabled': True, 'resume_timeout': '30s', 'ack_timeout': '60s', 'request_every': 1,
               'request_interval': '30s'}
    _nodes = itertools.count(1)

    @classmethod
    def setUpClass(cls):
        cls.component_port = free_port()
        cls.server_config = deep_merge({
            'component': {'address': '127.0.0.1', 'port': cls.component_port},
            'components': dict(cls.component_domains),
            'push': deep_merge(cls.BASE_PUSH, cls.push_config),
            'sm': dict(cls.BASE_SM),
        }, cls.extra_config)
        super().setUpClass()
        cls.components = {}
        for domain, secret in cls.component_domains.items():
            c = Component(cls.component_port, domain, secret)
            cls.addClassCleanup(c.stop)
            c.start()
            cls.components[domain] = c
        cls.comp = cls.components[next(iter(cls.component_domains))]

    def new_node(self, prefix='n'):
        return '%s-%d' % (prefix, next(self._nodes))

    def evidence(self, *peers):
        parts = [c.transcript() for c in self.components.values()]
        for p in peers:
            parts.append(p.dump())
        return '\n'.join(parts)

    # -- enable / disable ----------------------------------------------------
    def enable(self, peer, node, jid=PUSH_JID, secret='s', form=True, raw_payload=None):
        """Send a push <enable/>; returns the reply IQ."""
        if raw_payload is None:
            attrs = ''
            if jid is not None:
                attrs += " jid='%s'" % esc(jid)
            if node is not None:
                attrs += " node='%s'" % esc(node)
            inner = push_form(secret) if form else ''
            raw_payload = "<enable xmlns='%s'%s>%s</enable>" % (NS_PUSH, attrs, inner)
        return peer.iq('set', raw_payload)

    def enable_ok(self, peer, node, jid=PUSH_JID, **kw):
        r = self.enable(peer, node, jid, **kw)
        self.assertResult(r, 'push enable of %s on %s: ' % (node, jid))
        return r

    def disable(self, peer, jid=PUSH_JID, node=None):
        attrs = " jid='%s'" % esc(jid) if jid is not None else ''
        if node is not None:
            attrs += " node='%s'" % esc(node)
        return peer.iq('set', "<disable xmlns='%s'%s/>" % (NS_PUSH, attrs))

    # -- common scenario pieces --------------------------------------------------
    def registered_offline(self, prefix, nodes=None, jid=PUSH_JID):
        """A fresh account whose session enables push on `nodes` (default one
        new node) and then logs out; returns (account, nodes, sender peer)."""
        acc = self.new_user(prefix)
        nodes = nodes or [self.new_node(prefix)]
        p = self.peer(acc, 'dev')
        for n in nodes:
            self.enable_ok(p, n, jid)
        p.logout()
        sender = self.peer(self.new_user(prefix + 's'), 'sender')
        return acc, nodes, sender

    def bare(self, acc):
        return '%s@%s' % (acc[0], self.server.domain)

    def assertNotification(self, p, node, jid=PUSH_JID, msg=''):
        """The envelope and shape of a publish (XEP-0357 section 7)."""
        self.assertEqual(p['frm'], self.server.domain, '%spublish not from the server domain: %s' % (msg, p['raw']))
        self.assertEqual(p['to'], jid, '%spublish not to the registration jid: %s' % (msg, p['raw']))
        self.assertEqual(p['type'], 'set', '%spublish is not an iq set: %s' % (msg, p['raw']))
        self.assertEqual(p['node'], node, '%spublish to the wrong node: %s' % (msg, p['raw']))
        self.assertTrue(p['id'], '%spublish without id: %s' % (msg, p['raw']))
        self.assertIsNotNone(p['notification'], '%sno <item><notification xmlns=%s/> in the publish: %s'
                             % (msg, NS_PUSH, p['raw']))
        self.assertIsNotNone(p['summary'], '%sno data form in <notification/>: %s' % (msg, p['raw']))
        self.assertEqual(p['summary_form'].get('type'), 'submit', '%snotification form type: %s' % (msg, p['raw']))
        self.assertEqual(p['summary'].get('FORM_TYPE'), [SUMMARY], '%snotification FORM_TYPE: %s' % (msg, p['raw']))
        count = one(p['summary'], 'message-count')
        self.assertIsNotNone(count, '%sno message-count in the summary: %s' % (msg, p['raw']))
        self.assertTrue(count.isdigit() and int(count) >= 1, '%sbad message-count %r: %s' % (msg, count, p['raw']))
        return p
