"""Shared helpers of the stream management (XEP-0198) and client state
indication (XEP-0352) suites; no tests here.

* SMPeer      - a Peer (test_chat_common) that logs in step by step so a test
                can enable stream management, resume, or do things in the
                wrong order.  It counts the stanzas it sends and receives
                (h values) from <enable/>/<resume/> on, answers the server's
                <r/> automatically unless auto_ack=False, and records every
                <r/> and <a/> it gets.
* SM(local)   - predicate on a urn:xmpp:sm:3 element.
* SMTestCase  - ChatTestCase with SM peers, resume attempts and a few
                assertions on <failed/> and stream errors.
"""

import re
import time
import xml.etree.ElementTree as ET

from harness import NS_STANZAS, RawStream, StreamClosed, StreamErrorReceived, TIMEOUT, local_name, q
from test_chat_common import NS_DELAY, ChatTestCase, M, Peer, xml

NS_SM = 'urn:xmpp:sm:3'
NS_CSI = 'urn:xmpp:csi:0'
H_MOD = 1 << 32
_STANZA_NAMES = ('message', 'presence', 'iq')


def SM(local, **attrs):
    """Predicate: an element <local xmlns='urn:xmpp:sm:3'/> with these attributes."""
    def pred(el):
        if el.tag != q(NS_SM, local):
            return False
        return all(el.get(k) == v for k, v in attrs.items())
    pred.desc = '<%s xmlns=%s%s/>' % (local, NS_SM, ''.join(" %s='%s'" % kv for kv in attrs.items()))
    return pred


def is_stanza(el):
    return el.tag in ('{jabber:client}message', '{jabber:client}presence', '{jabber:client}iq')


def count_stanzas(data):
    """Number of top-level jabber:client stanzas in a string we send."""
    if isinstance(data, bytes):
        data = data.decode('utf-8', 'replace')
    if '<' not in data:
        return 0
    try:
        root = ET.fromstring("<wrap xmlns='jabber:client'>%s</wrap>" % data)
    except ET.ParseError:
        return 0
    return sum(1 for c in root if c.tag in ('{jabber:client}%s' % n for n in _STANZA_NAMES))


def failed_condition(el):
    """The defined condition (urn:ietf:params:xml:ns:xmpp-stanzas) of a <failed/>."""
    for c in el:
        if c.tag.startswith('{%s}' % NS_STANZAS) and local_name(c.tag) != 'text':
            return local_name(c.tag)
    return None


def message_ids(elements):
    return [el.get('id') for el in elements if el.tag == '{jabber:client}message']


class SMPeer(Peer):
    """A raw client that does SASL, then (optionally) bind and <enable/>.

        SMPeer(tc, user, pw, 'r')                       # bound + SM enabled
        SMPeer(tc, user, pw, 'r', enable=False)         # bound only
        SMPeer(tc, user, pw, bind=False, enable=False)  # authenticated only
    """

    def __init__(self, tc, user, password, resource='r', *, bind=True, enable=True, resume=True,
                 max_=None, auto_ack=True, expect_enabled=True):
        self.tc = tc
        self.user = user
        self.password = password
        self.rs = tc.raw()
        el = self.rs.authenticate(user, password)
        if RawStream.sasl_condition(el) != 'success':
            raise AssertionError('login of %s failed: %s' % (user, xml(el)))
        self.post_auth_features = self.rs.open_stream()
        self.inbox = []
        self.seen = []
        self.closed = False
        self.auto_ack = auto_ack
        self.counting = False       # stanzas received are counted (h_in)
        self.counting_out = False   # stanzas sent are counted (h_out)
        self.h_in = 0
        self.h_out = 0
        self.r_received = []        # index into self.seen of every <r/> received
        self.acks = []              # h of every <a/> received
        self.sm_id = None
        self.enabled = None
        self.jid = None
        self.bare = '%s@%s' % (user, tc.server.domain)
        self.resource = None
        if bind:
            self.jid = self.rs.bind(resource)
            self.resource = self.jid.split('/', 1)[1]
        if enable:
            el = self.enable(resume=resume, max_=max_)
            if expect_enabled and el.tag != q(NS_SM, 'enabled'):
                raise AssertionError('<enable/> of %s was answered with %s' % (self.jid, xml(el)))

    def __repr__(self):
        return '<SMPeer %s sm=%s h_in=%d h_out=%d>' % (self.jid, self.sm_id, self.h_in, self.h_out)

    # -- I/O --------------------------------------------------------------
    def send(self, data):
        if self.counting_out:
            self.h_out = (self.h_out + count_stanzas(data)) % H_MOD
        self.rs.send(data)
        return self

    def _pump(self, timeout):
        try:
            el = self.rs.next_element(timeout)
        except TimeoutError:
            return False
        self.seen.append(el)
        if el.tag == q(NS_SM, 'r'):
            self.r_received.append(len(self.seen) - 1)
            if self.auto_ack:
                self.ack()
                return True
        elif el.tag == q(NS_SM, 'a'):
            self.acks.append(int(el.get('h')))
        elif el.tag in (q(NS_SM, 'enabled'), q(NS_SM, 'resumed')):
            self.counting = True
        elif self.counting and is_stanza(el):
            self.h_in = (self.h_in + 1) % H_MOD
        self.inbox.append(el)
        return True

    def pump_for(self, seconds):
        """Read (and auto-ack) whatever arrives during `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.rs.eof:
                return
            self._pump(left)

    def stanzas_seen(self):
        return [el for el in self.seen if is_stanza(el)]

    def messages_seen(self, with_body=True):
        return [el for el in self.seen if el.tag == '{jabber:client}message'
                and (not with_body or el.find('{jabber:client}body') is not None)]

    # -- stream management ----------------------------------------------------
    def enable(self, resume=True, max_=None, timeout=TIMEOUT):
        """<enable/>; returns the answer (<enabled/> or <failed/>)."""
        attrs = " resume='true'" if resume else ''
        if max_ is not None:
            attrs += " max='%s'" % max_
        self.rs.send("<enable xmlns='%s'%s/>" % (NS_SM, attrs))
        was = (self.counting_out, self.h_out)
        self.counting_out, self.h_out = True, 0
        el = self.expect(lambda e: e.tag in (q(NS_SM, 'enabled'), q(NS_SM, 'failed')), timeout,
                         'the answer to <enable/>')
        if el.tag == q(NS_SM, 'enabled'):
            self.enabled = el
            self.sm_id = el.get('id')
            self.h_in = 0
            # stanzas taken in before <enabled/> (none expected) were not counted
        else:
            self.counting_out, self.h_out = was
        return el

    def resume(self, previd, h, timeout=TIMEOUT):
        """<resume/>; returns the answer (<resumed/> or <failed/>).  On
        <resumed/> the counters continue: h_in from the h we sent, h_out
        from the server's h."""
        self.rs.send("<resume xmlns='%s' previd='%s' h='%s'/>" % (NS_SM, previd, h))
        el = self.expect(lambda e: e.tag in (q(NS_SM, 'resumed'), q(NS_SM, 'failed')), timeout,
                         'the answer to <resume/>')
        if el.tag == q(NS_SM, 'resumed'):
            self.h_in = int(h) % H_MOD
            self.h_out = int(el.get('h')) % H_MOD
            self.counting = self.counting_out = True
            self.sm_id = previd
        return el

    def ack(self, h=None):
        """<a h='...'/> (default: everything received so far)."""
        self.rs.send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h_in if h is None else h))
        return self

    def request(self, timeout=TIMEOUT):
        """<r/> -> the h of the server's <a/>."""
        n = len(self.acks)
        self.rs.send("<r xmlns='%s'/>" % NS_SM)
        deadline = time.monotonic() + timeout
        while len(self.acks) == n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('%s: no <a/> within %.1fs of <r/>\n%s' % (self.jid, timeout, self.dump()))
            self._pump(left)
        self.take_all(SM('a'))
        return self.acks[n]

    def inactive(self):
        self.rs.send("<inactive xmlns='%s'/>" % NS_CSI)
        return self

    def active(self):
        self.rs.send("<active xmlns='%s'/>" % NS_CSI)
        return self

    def wait_closed(self, timeout=TIMEOUT):
        """Read (answering nothing new) until the server closes the connection."""
        deadline = time.monotonic() + timeout
        while not self.rs.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('%s: connection still open after %.1fs\n%s' % (self.jid, timeout, self.dump()))
            try:
                self._pump(left)
            except (StreamClosed, StreamErrorReceived):
                self.rs.read_until_closed(max(0.1, deadline - time.monotonic()))
        self.closed = True
        return self.rs.text


def stream_error_of(text):
    """(condition, error xml) of the first stream error in text, or (None, None)."""
    from harness import find_stream_error
    info = find_stream_error(text)
    if info is None:
        return None, None
    return info.condition, info.error_xml


class SMTestCase(ChatTestCase):
    """ChatTestCase with SM helpers."""

    def sm_peer(self, account, resource='r', available=False, **kw):
        user, password = account
        p = SMPeer(self, user, password, resource, **kw)
        if available:
            p.available()
            p.barrier()
            p.take_all(M('presence', type='available', frm=p.jid))
        return p

    def resume_peer(self, account, previd, h, auto_ack=True):
        """A new connection of account that sends <resume/>; returns
        (peer, answer element)."""
        user, password = account
        p = SMPeer(self, user, password, bind=False, enable=False, auto_ack=auto_ack)
        el = p.resume(previd, h)
        return p, el

    def assertResumed(self, el, previd, h=None, msg=''):
        self.assertEqual(el.tag, q(NS_SM, 'resumed'), '%sresume failed: %s' % (msg, xml(el)))
        self.assertEqual(el.get('previd'), previd, '%s<resumed/> with the wrong previd: %s' % (msg, xml(el)))
        if h is not None:
            self.assertEqual(el.get('h'), str(h),
                             "%s<resumed/> h must be the number of stanzas the server handled from the "
                             "client (%d): %s" % (msg, h, xml(el)))

    def assertFailed(self, el, conditions, msg=''):
        if isinstance(conditions, str):
            conditions = (conditions,)
        self.assertEqual(el.tag, q(NS_SM, 'failed'), '%sexpected <failed/>, got %s' % (msg, xml(el)))
        self.assertIn(failed_condition(el), conditions, '%swrong <failed/> condition: %s' % (msg, xml(el)))

    def assertDelayed(self, el, msg=''):
        self.assertIsNotNone(el.find(q(NS_DELAY, 'delay')),
                             '%sno <delay xmlns=urn:xmpp:delay/> on a message from offline storage: %s'
                             % (msg, xml(el)))

    def assertOnce(self, ids_expected, elements, msg=''):
        """Every expected message id is among elements exactly once."""
        got = message_ids(elements)
        missing = [i for i in ids_expected if i not in got]
        dups = sorted({i for i in got if got.count(i) > 1})
        self.assertFalse(missing, '%smessages never received: %s (received: %s)' % (msg, missing, got))
        self.assertFalse(dups, '%smessages received more than once: %s (received: %s)' % (msg, dups, got))

    def expect_messages(self, peer, ids, timeout=TIMEOUT, in_order=True):
        """Wait for the messages with these ids (in this order) and return them."""
        got = [peer.expect(M('message', id=i), timeout, 'message %s' % i) for i in ids]
        if in_order:
            order = [peer.seen.index(el) for el in got]
            self.assertEqual(order, sorted(order), '%s: messages out of order: %s'
                             % (peer.jid, [e.get('id') for e in sorted(got, key=peer.seen.index)]))
        return got


def handled_count_too_high(text):
    """(h, send-count) of a <handled-count-too-high/> in the text, or None."""
    m = re.search(r"<handled-count-too-high\b[^>]*>", text)
    if not m:
        return None
    tag = m.group(0)
    h = re.search(r"\bh=['\"](\d+)['\"]", tag)
    sc = re.search(r"\bsend-count=['\"](\d+)['\"]", tag)
    return (h and int(h.group(1)), sc and int(sc.group(1)))
