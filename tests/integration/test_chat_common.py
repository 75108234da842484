"""Shared helpers of the chat test suites (test_chat_*.py); no tests here.

* Peer          - a logged-in raw client (RawStream) with an inbox: every
                  top-level element received is kept, in arrival order, until
                  a test takes it with expect(); expect_none() asserts that
                  nothing matching arrives within a quiet period.
* M(...)        - stanza predicates: M('presence', type='subscribe', frm=J).
* ChatTestCase  - TernTestCase with fresh accounts per test, peers, the
                  subscription handshake, stanza error assertions and
                  slixmpp clients that fetch the roster and send presence.
"""

import asyncio
import datetime
import itertools
import os
import re
import socket
import struct
import time
import xml.etree.ElementTree as ET

from harness import (NS_CLIENT, NS_PING, NS_STANZAS, SlixClient, TernTestCase, TIMEOUT, local_name, q)

NS_ROSTER = 'jabber:iq:roster'
NS_ROSTERVER = 'urn:xmpp:features:rosterver'
NS_PREAPPROVAL = 'urn:xmpp:features:pre-approval'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_VERSION = 'jabber:iq:version'
NS_DELAY = 'urn:xmpp:delay'
NS_HINTS = 'urn:xmpp:hints'
NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'

# How long "nothing more arrives" is watched for (after a round trip barrier).
QUIET = float(os.environ.get('TERN_TEST_QUIET', '0.4'))

ANY = object()


def C(local):
    """A jabber:client element name."""
    return q(NS_CLIENT, local)


def xml(el):
    return ET.tostring(el, encoding='unicode') if el is not None else 'None'


def esc(s):
    return (s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;').replace('"', '&quot;'))


def stanza_type(el):
    t = el.get('type')
    if t is None:
        return {'presence': 'available', 'message': 'normal'}.get(local_name(el.tag))
    return t


def body_of(el):
    b = el.find(C('body'))
    return None if b is None else (b.text or '')


def stanza_error(el):
    """(error type, defined condition) of an error stanza; (None, None) if none."""
    err = el.find(C('error'))
    if err is None:
        return None, None
    for c in err:
        if c.tag.startswith('{%s}' % NS_STANZAS) and local_name(c.tag) != 'text':
            return err.get('type'), local_name(c.tag)
    return err.get('type'), None


def M(kind=None, type=ANY, frm=ANY, to=ANY, id=ANY, child=None, body=ANY, fn=None):
    """Predicate on a top-level element.  type/frm/to may be a value, a
    tuple of accepted values, or ANY; 'type' of presence without a type is
    'available', of a message without one 'normal'.  child: Clark name of a
    required child element."""
    def ok(want, have):
        if want is ANY:
            return True
        if isinstance(want, (tuple, list, set, frozenset)):
            return have in want
        return have == want

    def pred(el):
        if kind is not None and el.tag != C(kind):
            return False
        if not ok(type, stanza_type(el)):
            return False
        if not ok(frm, el.get('from')) or not ok(to, el.get('to')) or not ok(id, el.get('id')):
            return False
        if child is not None and el.find(child) is None:
            return False
        if body is not ANY and body_of(el) != body:
            return False
        if fn is not None and not fn(el):
            return False
        return True
    parts = [kind or 'element']
    for k, v in (('type', type), ('from', frm), ('to', to), ('id', id), ('body', body)):
        if v is not ANY:
            parts.append('%s=%r' % (k, v))
    if child:
        parts.append('child=%s' % child)
    pred.desc = ' '.join(parts)
    return pred


def roster_items(el):
    """{jid: <item/>} of a roster result or push (empty if no <query/>)."""
    query = el.find(q(NS_ROSTER, 'query'))
    if query is None:
        return {}
    return {it.get('jid'): it for it in query.findall(q(NS_ROSTER, 'item'))}


def groups_of(item):
    return sorted((g.text or '') for g in item.findall(q(NS_ROSTER, 'group')))


def is_push(jid=ANY, subscription=ANY):
    """Predicate: a roster push (iq set, jabber:iq:roster) carrying an item
    for jid (with that subscription, if given; a missing one counts as 'none'
    except for the value 'remove')."""
    def fn(el):
        items = roster_items(el)
        if jid is not ANY and jid not in items:
            return False
        if subscription is ANY:
            return True
        it = items[jid] if jid is not ANY else next(iter(items.values()), None)
        if it is None:
            return False
        sub = it.get('subscription') or 'none'
        return sub in subscription if isinstance(subscription, tuple) else sub == subscription
    p = M('iq', type='set', child=q(NS_ROSTER, 'query'), fn=fn)
    p.desc = 'roster push for %s%s' % ('any jid' if jid is ANY else jid,
                                      '' if subscription is ANY else ' subscription=%r' % (subscription,))
    return p


_STAMP_RE = re.compile(r'^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$')


def parse_stamp(stamp):
    """XEP-0082 DateTime in UTC with 'Z' -> aware datetime (None if malformed)."""
    m = _STAMP_RE.match(stamp or '')
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = float(m.group(7)) if m.group(7) else 0.0
    try:
        return datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone.utc) + \
            datetime.timedelta(seconds=frac)
    except ValueError:
        return None


class Peer:
    """A raw, bound client session with an inbox (see module doc)."""

    _ids = itertools.count(1)

    def __init__(self, tc, user, password, resource):
        self.tc = tc
        self.user = user
        self.password = password
        self.rs = tc.raw()
        self.jid = self.rs.login(user, password, resource=resource)
        self.post_auth_features = self.rs.features
        self.bare = self.jid.split('/', 1)[0]
        self.resource = self.jid.split('/', 1)[1]
        self.inbox = []          # received, not yet taken
        self.seen = []           # everything received, in order
        self.closed = False

    def __repr__(self):
        return '<Peer %s>' % self.jid

    # -- I/O --------------------------------------------------------------
    def send(self, data):
        self.rs.send(data)
        return self

    def new_id(self, prefix='c'):
        return '%s%d' % (prefix, next(self._ids))

    def _pump(self, timeout):
        """Read one more element into the inbox; False on timeout."""
        try:
            el = self.rs.next_element(timeout)
        except TimeoutError:
            return False
        self.inbox.append(el)
        self.seen.append(el)
        return True

    def dump(self, n=12):
        els = self.inbox[-n:]
        return '%s inbox (%d):\n  %s\nlast bytes received:\n%s' % (
            self.jid, len(self.inbox), '\n  '.join(xml(e) for e in els) or '(empty)',
            self.rs.text[-1500:])

    def expect(self, pred, timeout=TIMEOUT, what=None):
        """Take (and return) the first inbox element matching pred, waiting
        up to timeout for it."""
        deadline = time.monotonic() + timeout
        while True:
            for i, el in enumerate(self.inbox):
                if pred(el):
                    del self.inbox[i]
                    return el
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('%s did not receive %s within %.1fs\n%s'
                                     % (self.jid, what or getattr(pred, 'desc', 'the stanza'),
                                        timeout, self.dump()))
            self._pump(left)

    def expect_none(self, pred, wait=QUIET, what=None):
        """Nothing matching pred is in the inbox or arrives within wait."""
        deadline = time.monotonic() + wait
        while True:
            for el in self.inbox:
                if pred(el):
                    raise AssertionError('%s unexpectedly received %s:\n  %s\n%s'
                                         % (self.jid, what or getattr(pred, 'desc', 'a stanza'),
                                            xml(el), self.dump()))
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._pump(left)

    def count(self, pred):
        return sum(1 for el in self.inbox if pred(el))

    def take_all(self, pred):
        out = [el for el in self.inbox if pred(el)]
        self.inbox = [el for el in self.inbox if not pred(el)]
        return out

    def clear(self):
        self.inbox.clear()

    # -- stanzas ----------------------------------------------------------
    def iq(self, type_, payload='', to=None, id_=None, timeout=TIMEOUT):
        """Send an IQ and return the reply with its id (from anyone)."""
        id_ = id_ or self.new_id('iq')
        self.send("<iq type='%s' id='%s'%s>%s</iq>"
                  % (type_, id_, " to='%s'" % to if to else '', payload))
        return self.expect(M('iq', type=('result', 'error'), id=id_), timeout,
                           'the reply to iq %s' % id_)

    def barrier(self):
        """A ping round trip to the server: everything the server sent us
        before answering it is in the inbox afterwards."""
        r = self.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=self.tc.server.domain)
        if r.get('type') != 'result':
            raise AssertionError('barrier ping failed: %s' % xml(r))

    def quiet(self, pred, what=None, wait=QUIET):
        """Barrier, then expect_none(pred)."""
        self.barrier()
        self.expect_none(pred, wait, what)

    def presence(self, type_=None, to=None, show=None, status=None, priority=None, id_=None, extra=''):
        attrs = ''
        if type_:
            attrs += " type='%s'" % type_
        if to:
            attrs += " to='%s'" % to
        if id_:
            attrs += " id='%s'" % id_
        inner = ''
        if show:
            inner += '<show>%s</show>' % show
        if status is not None:
            inner += '<status>%s</status>' % esc(status)
        if priority is not None:
            inner += '<priority>%d</priority>' % priority
        inner += extra
        self.send('<presence%s>%s</presence>' % (attrs, inner) if inner else '<presence%s/>' % attrs)
        return self

    def available(self, priority=None, show=None, status=None):
        return self.presence(show=show, status=status, priority=priority)

    def message(self, to, body=None, type_='chat', id_=None, extra='', frm=None):
        id_ = id_ or self.new_id('m')
        attrs = " to='%s' id='%s'" % (to, id_)
        if type_ is not None:
            attrs += " type='%s'" % type_
        if frm:
            attrs += " from='%s'" % frm
        inner = ('<body>%s</body>' % esc(body) if body is not None else '') + extra
        self.send('<message%s>%s</message>' % (attrs, inner))
        return id_

    # -- roster -----------------------------------------------------------
    def roster_get(self, ver=None, to=None):
        """Roster get (makes this an interested resource); returns the reply."""
        v = '' if ver is None else " ver='%s'" % esc(ver)
        r = self.iq('get', "<query xmlns='%s'%s/>" % (NS_ROSTER, v), to=to)
        return r

    def roster(self):
        """{jid: item} after asserting a successful roster get."""
        r = self.roster_get()
        if r.get('type') != 'result':
            raise AssertionError('roster get failed: %s' % xml(r))
        return roster_items(r)

    def roster_set(self, item_xml, to=None):
        return self.iq('set', "<query xmlns='%s'>%s</query>" % (NS_ROSTER, item_xml), to=to)

    def expect_push(self, jid, subscription=ANY, timeout=TIMEOUT):
        """Wait for a roster push for jid, check its envelope (RFC 6121
        2.1.6: no 'from' or the user's bare JID), acknowledge it and return
        the <item/>."""
        el = self.expect(is_push(jid, subscription), timeout)
        if el.get('from') not in (None, self.bare):
            raise AssertionError('roster push from %r (must be absent or %s): %s'
                                 % (el.get('from'), self.bare, xml(el)))
        if not el.get('id'):
            raise AssertionError('roster push without id: %s' % xml(el))
        items = roster_items(el)
        if len(items) != 1:
            raise AssertionError('roster push must carry exactly one item: %s' % xml(el))
        self.send("<iq type='result' id='%s'/>" % esc(el.get('id')))
        return items[jid]

    # -- end of session -----------------------------------------------------
    def logout(self, unavailable=False):
        """Optionally unavailable presence, then </stream:stream>; waits for
        the server to close."""
        if unavailable:
            self.presence('unavailable')
        self.send('</stream:stream>')
        try:
            self.rs.read_until_closed(TIMEOUT)
        finally:
            self.rs.close()
            self.closed = True

    def drop(self):
        """Abrupt TCP drop: RST (SO_LINGER 0), no </stream:stream>, no TLS
        close_notify."""
        s = self.rs.sock
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        except OSError:
            pass
        s.close()
        self.closed = True


class ChatTestCase(TernTestCase):
    """One ternd per class; every test makes its own accounts."""

    users = {}

    def accounts(self, n, prefix='u'):
        return [self.new_user(prefix) for _ in range(n)]

    def peer(self, account, resource='r', roster=False, available=False, priority=None, show=None,
             status=None):
        user, password = account
        p = Peer(self, user, password, resource)
        if roster:
            r = p.roster_get()
            self.assertEqual(r.get('type'), 'result', 'roster get failed: %s' % xml(r))
        if available:
            p.available(priority=priority, show=show, status=status)
            # the session is known available once the server answered a ping
            # sent after the presence; our own presence comes back (RFC 6121
            # 4.2.2, tested separately): drop that echo
            p.barrier()
            p.take_all(M('presence', type='available', frm=p.jid))
        return p

    def subscribe(self, a, b, approve=True):
        """a subscribes to b's presence and b approves (both online raw peers,
        both interested); returns after both roster pushes."""
        a.presence('subscribe', to=b.bare)
        a.expect_push(b.bare)
        b.expect(M('presence', type='subscribe', frm=a.bare))
        if approve:
            b.presence('subscribed', to=a.bare)
            b.expect_push(a.bare, ('from', 'both'))
            a.expect_push(b.bare, ('to', 'both'))
            a.expect(M('presence', type='subscribed', frm=b.bare))

    def befriend(self, a, b):
        """Mutual subscription ('both') between the accounts of peers a and b."""
        self.subscribe(a, b)
        self.subscribe(b, a)
        a.barrier()
        b.barrier()
        a.clear()
        b.clear()

    def befriend_accounts(self, acc_a, acc_b, one_way=False):
        """Subscription between two accounts using temporary sessions that
        never become available; one_way: only a -> b ('to' for a)."""
        a = self.peer(acc_a, 'setup', roster=True)
        b = self.peer(acc_b, 'setup', roster=True)
        b.available()
        b.barrier()
        self.subscribe(a, b)
        if not one_way:
            a.available()
            a.barrier()
            self.subscribe(b, a)
        a.logout()
        b.logout()

    # -- assertions ---------------------------------------------------------
    def assertStanzaError(self, el, conditions, type_=None, msg=''):
        if isinstance(conditions, str):
            conditions = (conditions,)
        self.assertEqual(stanza_type(el), 'error', '%sexpected an error stanza, got: %s' % (msg, xml(el)))
        etype, cond = stanza_error(el)
        self.assertIn(cond, conditions, '%swrong error condition: %s' % (msg, xml(el)))
        if type_ is not None:
            self.assertEqual(etype, type_, '%swrong error type: %s' % (msg, xml(el)))
        return cond

    def assertResult(self, el, msg=''):
        self.assertEqual(el.get('type'), 'result', '%sexpected an IQ result, got: %s' % (msg, xml(el)))

    # -- slixmpp ------------------------------------------------------------
    async def slix(self, account, resource, plugins=(), roster=True, presence=True, priority=None,
                   show=None):
        """A started slixmpp client (roster fetched, initial presence sent),
        recording received messages in .messages; stopped at cleanup."""
        user, password = account
        c = SlixClient(self.server, user, password, resource=resource, plugins=plugins)
        c.messages = []
        c.xmpp.add_event_handler('message', lambda m: c.messages.append(m))
        self._slix.append(c)
        outcome = await c.start()
        self.assertEqual(outcome, 'session_start', c.summary())
        if roster:
            await asyncio.wait_for(c.xmpp.get_roster(), TIMEOUT)
        if presence:
            kw = {}
            if priority is not None:
                kw['ppriority'] = priority
            if show:
                kw['pshow'] = show
            c.xmpp.send_presence(**kw)
        await self.slix_barrier(c)
        return c

    async def slix_barrier(self, c):
        """A ping round trip to the server (the stanzas sent before it are
        processed once it is answered)."""
        iq = c.xmpp.Iq()
        iq['type'] = 'get'
        iq['to'] = self.server.domain
        iq.xml.append(ET.Element('{%s}ping' % NS_PING))
        await iq.send(timeout=TIMEOUT)

    async def until(self, pred, what, timeout=TIMEOUT, clients=()):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError('timed out after %.1fs waiting for %s\n%s' % (
                    timeout, what, '\n'.join(c.summary() for c in clients)))
            await asyncio.sleep(0.02)

    def run_slix(self, coro_fn, timeout=4 * TIMEOUT):
        """Run coro_fn() with slixmpp clients made by self.slix(); all of them
        are stopped afterwards."""
        from harness import run_async

        async def go():
            self._slix = []
            try:
                return await coro_fn()
            finally:
                for c in self._slix:
                    await c.stop()
        return run_async(go(), timeout)
