"""Stream management (XEP-0198) under chaos: 50 raw asyncio clients with
resumable sessions exchange 2000 messages with unique ids while their
connections are cut abruptly (RST) at random; each cut client resumes
after a short pause, or logs in fresh (replacing its hibernated session),
or waits until its session expired and then fails to resume and binds
again.  Clients behave as XEP-0198 asks: they answer <r/>, ask for acks
every few stanzas and re-send what the server did not acknowledge (after
<resumed h/>: what is past h; after a fresh login: every unacked message).

At the end every client acks everything, closes its stream cleanly, logs
in fresh and collects its offline messages.  After de-duplication by id
every message must have arrived at its recipient: 0 lost.

Bounded: the traffic phase is paced over ~20 s and every wait has a
timeout; the whole test takes well under a minute."""

import asyncio
import base64
import os
import collections
import random
import socket
import struct
import time
import unittest
import xml.etree.ElementTree as ET

from harness import NS_BIND, NS_SASL, NS_STREAM, RawStream, TIMEOUT, client_ssl_context, q, run_async
from test_chat_common import NS_DELAY, ChatTestCase
from test_sm_common import NS_SM, H_MOD

N_CLIENTS = 50
N_MESSAGES = 2000
SEND_SECONDS = 20.0
KILL_EVERY = 20            # one abrupt disconnect per this many messages
RESUME_TIMEOUT = 2.0
CLIENT_R_EVERY = 5         # the clients ask for an ack after this many stanzas
SEED = int(os.environ.get('TERN_CHAOS_SEED', '198'))

STANZAS = ('{jabber:client}message', '{jabber:client}presence', '{jabber:client}iq')


class Conn:
    """One TCP/TLS connection of a client, with its own XML parser."""

    def __init__(self, client, reader, writer):
        self.client = client
        self.reader = reader
        self.writer = writer
        self.queue = asyncio.Queue()      # non-stanza top-level elements (login steps)
        self.counting = False             # SM active on this connection
        self.acked_ids = None             # on a resumed connection: ids acked by <resume h/>
        self.closed = asyncio.Event()
        self.killed = False
        self.stream_error = None
        self.new_parser()

    def new_parser(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.root = None

    def write(self, data):
        if self.closed.is_set() or self.killed:
            return False
        try:
            self.writer.write(data.encode() if isinstance(data, str) else data)
            return True
        except (ConnectionError, RuntimeError, OSError):
            return False

    def header(self):
        self.new_parser()
        self.write(RawStream.header())

    def feed(self, data):
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == 'start':
                if self.depth == 0:
                    self.root = el
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    try:
                        self.root.remove(el)
                    except ValueError:
                        pass
                    self.client.on_element(self, el)

    async def read_loop(self):
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.feed(data)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ET.ParseError) as e:
            if not self.killed:
                self.client.world.note('read error on %s: %r' % (self.client.user, e))
        except Exception as e:     # ssl errors etc.
            if not self.killed:
                self.client.world.note('read error on %s: %r' % (self.client.user, e))
        finally:
            self.closed.set()
            self.queue.put_nowait(None)
            self.client.on_closed(self)

    async def get(self, timeout=TIMEOUT):
        el = await asyncio.wait_for(self.queue.get(), timeout)
        if el is None:
            raise ConnectionError('%s: connection closed during login (stream error: %s)'
                                  % (self.client.user, self.stream_error))
        return el

    def kill(self):
        """Abrupt close: RST (SO_LINGER 0), no </stream:stream>, no close_notify."""
        self.killed = True
        sock = self.writer.get_extra_info('socket')
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        except OSError:
            pass
        self.writer.transport.abort()


class Client:
    def __init__(self, world, user, password):
        self.world = world
        self.user = user
        self.password = password
        self.bare = '%s@localhost' % user
        self.conn = None
        self.ready = False           # a session is up on self.conn and can send
        self.sm_id = None
        self.h_in = 0
        self.acked = 0               # stanzas of ours the server acknowledged
        self.unacked = collections.deque()   # (kind, xml) sent, not acknowledged
        self.since_r = 0
        self.reconnecting = False
        self.read_task = None
        self.seen_ids = set()

    # -- connection and login ---------------------------------------------------
    async def open_authenticated(self):
        ctx = client_ssl_context()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection('127.0.0.1', self.world.tls_port, ssl=ctx, server_hostname='localhost'),
            TIMEOUT)
        conn = Conn(self, reader, writer)
        self.attempt = conn
        self.world.tasks.append(asyncio.ensure_future(conn.read_loop()))
        conn.header()
        await conn.get()                                     # features
        creds = base64.b64encode(('\0%s\0%s' % (self.user, self.password)).encode()).decode()
        conn.write("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, creds))
        el = await conn.get()
        if el.tag != q(NS_SASL, 'success'):
            raise AssertionError('%s: auth failed: %s' % (self.user, ET.tostring(el, 'unicode')))
        conn.header()
        feats = await conn.get()
        if feats.find(q(NS_SM, 'sm')) is None:
            raise AssertionError('%s: no sm feature: %s' % (self.user, ET.tostring(feats, 'unicode')))
        return conn

    async def bind_and_enable(self, conn):
        conn.write("<iq type='set' id='bind'><bind xmlns='%s'><resource>r</resource></bind></iq>" % NS_BIND)
        el = await conn.get()
        if el.get('type') != 'result':
            raise AssertionError('%s: bind failed: %s' % (self.user, ET.tostring(el, 'unicode')))
        conn.write("<enable xmlns='%s' resume='true'/>" % NS_SM)
        el = await conn.get()
        if el.tag != q(NS_SM, 'enabled'):
            raise AssertionError('%s: enable failed: %s' % (self.user, ET.tostring(el, 'unicode')))
        # (on_element set sm_id, h_in, conn.counting and self.conn already)
        pending = [x for kind, x in self.unacked if kind == 'message']
        self.acked = 0
        self.unacked.clear()
        self.since_r = 0
        self.ready = True
        self.send_stanza('presence', '<presence/>')
        for x in pending:                  # the server may have had them: dups are fine
            self.world.resent += 1
            self.world.resent_ids.add(ET.fromstring(x).get('id'))
            self.send_stanza('message', x)
        self.request()

    async def login_fresh(self):
        conn = await self.open_authenticated()
        await self.bind_and_enable(conn)

    async def resume_killed(self):
        """<resume/>, then the new connection dies at once (before the
        answer is read); the session must still be resumable afterwards."""
        conn = await self.open_authenticated()
        conn.write("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, self.sm_id, self.h_in))
        await asyncio.sleep(self.world.rng.uniform(0.0, 0.01))
        conn.kill()
        self.world.resume_killed += 1
        await asyncio.sleep(self.world.rng.uniform(0.05, 0.3))
        await self.resume_or_bind(expect_success=True)

    async def resume_or_bind(self, expect_success):
        conn = await self.open_authenticated()
        conn.write("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, self.sm_id, self.h_in))
        el = await conn.get()
        if el.tag == q(NS_SM, 'resumed'):
            if not expect_success:
                self.world.note('%s: resumed after the resume timeout' % self.user)
            self.world.resumed += 1
            self.on_ack(int(el.get('h')), 'resumed')
            self.ready = True
            self.since_r = 0
            for kind, x in list(self.unacked):
                self.world.resent += 1
                self.world.resent_ids.add(ET.fromstring(x).get('id'))
                conn.write(x)
                self.since_r += 1
            self.request()
            return
        cond = [c.tag.rsplit('}', 1)[1] for c in el]
        if expect_success:
            self.world.resume_failed_unexpected += 1
            self.world.note('%s: resume failed unexpectedly: %s' % (self.user, ET.tostring(el, 'unicode')))
        else:
            self.world.resume_failed_expected += 1
            if 'item-not-found' not in cond:
                self.world.note('%s: resume after expiry failed with %s' % (self.user, cond))
        await self.bind_and_enable(conn)

    # -- stanzas ----------------------------------------------------------------
    def send_stanza(self, kind, data):
        self.unacked.append((kind, data))
        if self.ready:
            self.conn.write(data)
            self.since_r += 1
            if self.since_r >= CLIENT_R_EVERY:
                self.request()

    def request(self):
        self.since_r = 0
        self.conn.write("<r xmlns='%s'/>" % NS_SM)

    def on_ack(self, h, where='a'):
        n = (h - self.acked) % H_MOD
        if n > len(self.unacked):
            self.world.note('%s: server acked h=%d (%s) but only %d+%d were sent'
                            % (self.user, h, where, self.acked, len(self.unacked)))
            n = len(self.unacked)
        for _ in range(n):
            self.unacked.popleft()
        self.acked = h

    def on_element(self, conn, el):
        tag = el.tag
        if tag in STANZAS:
            if conn.counting and conn is self.conn:
                self.h_in = (self.h_in + 1) % H_MOD
            if tag == '{jabber:client}message':
                self.world.on_message(self, conn, el)
            elif tag == '{jabber:client}iq' and el.get('id') == 'bind':
                conn.queue.put_nowait(el)
            return
        if tag == q(NS_SM, 'r'):
            if conn is self.conn and conn.counting:
                conn.write("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h_in))
            return
        if tag == q(NS_SM, 'a'):
            if conn is self.conn:
                self.on_ack(int(el.get('h')))
            return
        if tag == q(NS_SM, 'enabled'):
            # counting starts right here: stanzas may follow in the same read
            self.sm_id = el.get('id')
            self.h_in = 0
            conn.counting = True
            self.conn = conn
        elif tag == q(NS_SM, 'resumed'):
            conn.counting = True       # h_in goes on from the h we sent
            conn.acked_ids = set(self.seen_ids)   # all counted in the h we sent
            self.conn = conn
        elif tag == q(NS_STREAM, 'error'):
            conn.stream_error = ET.tostring(el, 'unicode')
            return
        conn.queue.put_nowait(el)

    def on_closed(self, conn):
        if conn is not self.conn:
            return
        self.ready = False
        if not conn.killed and not self.world.closing:
            # the server closed a live connection on its own: log it, come back
            self.world.server_closed += 1
            self.world.note('%s: server closed the connection (%s)' % (self.user, conn.stream_error))
            self.world.spawn(self.reconnect('resume', 0.05))

    # -- chaos --------------------------------------------------------------------
    def kill(self):
        self.ready = False
        self.conn.kill()
        self.world.kills += 1

    async def reconnect(self, mode, delay):
        if self.reconnecting:
            return
        self.reconnecting = True
        try:
            await asyncio.sleep(delay)
            for attempt in range(3):
                try:
                    if mode == 'fresh' or self.sm_id is None:
                        self.world.fresh += 1
                        await self.login_fresh()
                    elif mode == 'resume-killed' and attempt == 0:
                        await self.resume_killed()
                    else:
                        await self.resume_or_bind(expect_success=(mode == 'resume'))
                    return
                except (ConnectionError, OSError, asyncio.TimeoutError, AssertionError) as e:
                    self.world.note('%s: reconnect (%s) attempt %d failed: %r' % (self.user, mode, attempt, e))
                    a = getattr(self, 'attempt', None)
                    if a is not None and not a.closed.is_set():
                        a.kill()
                    self.ready = False
                    await asyncio.sleep(0.2)
            self.world.note('%s: gave up reconnecting' % self.user)
        finally:
            self.reconnecting = False

    async def close_cleanly(self):
        conn = self.conn
        if conn is None or conn.closed.is_set():
            return
        conn.write("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h_in))
        conn.write('</stream:stream>')
        self.ready = False
        try:
            await asyncio.wait_for(conn.closed.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            self.world.note('%s: server did not close after </stream:stream>' % self.user)
            conn.kill()


class World:
    def __init__(self, tls_port, accounts):
        self.tls_port = tls_port
        self.rng = random.Random(SEED)
        self.clients = [Client(self, u, p) for u, p in accounts]
        self.by_bare = {c.bare: c for c in self.clients}
        self.sent = {}                              # id -> recipient user
        self.received = collections.Counter()       # id -> copies
        self.misrouted = []
        self.bounced = []
        self.delayed = 0
        self.dups = collections.Counter()
        self.resent_ids = set()
        self.notes = []
        self.tasks = []
        self.closing = False
        self.resume_killed = 0
        self.kills = self.resumed = self.fresh = self.resent = self.server_closed = 0
        self.resume_failed_expected = self.resume_failed_unexpected = 0

    def note(self, s):
        self.notes.append('%7.2fs %s' % (time.monotonic() - self.t0, s))

    def spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.append(t)
        return t

    def on_message(self, client, conn, el):
        mid = el.get('id')
        if el.get('type') == 'error':
            self.bounced.append(ET.tostring(el, 'unicode'))
            return
        if mid not in self.sent:
            return
        self.received[mid] += 1
        if self.sent[mid] != client.user:
            self.misrouted.append((mid, self.sent[mid], client.user))
        delayed = el.find(q(NS_DELAY, 'delay')) is not None
        if delayed:
            self.delayed += 1
        if mid in client.seen_ids:
            if delayed:
                self.dups['offline copy of a message seen but not acked'] += 1
            elif mid in self.resent_ids:
                self.dups['sender re-sent an unacked message'] += 1
            elif conn.acked_ids is not None and mid in conn.acked_ids:
                # the client had acked it with the h of <resume/>
                self.dups['re-sent after <resume h/> acked it'] += 1
                self.note('%s: %s re-sent on a resumed stream although <resume h/> acked it'
                          % (client.user, mid))
            else:
                self.dups['other'] += 1
        client.seen_ids.add(mid)

    def missing(self):
        return [m for m in self.sent if not self.received[m]]

    async def until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def run(self):
        self.t0 = time.monotonic()
        rng = self.rng
        # everyone logs in (in batches, not to trip connection limits)
        for i in range(0, len(self.clients), 10):
            await asyncio.gather(*(c.login_fresh() for c in self.clients[i:i + 10]))
        t_login = time.monotonic() - self.t0
        # traffic with chaos
        interval = SEND_SECONDS / N_MESSAGES
        reconnects = []
        next_at = time.monotonic()
        for n in range(N_MESSAGES):
            senders = [c for c in self.clients if c.ready]
            if not senders:
                await self.until(lambda: any(c.ready for c in self.clients), TIMEOUT)
                senders = [c for c in self.clients if c.ready]
            snd = rng.choice(senders)
            rcp = rng.choice([c for c in self.clients if c is not snd])
            mid = 'chaos-%05d' % n
            self.sent[mid] = rcp.user
            snd.send_stanza('message', "<message to='%s' id='%s' type='chat'><body>%s from %s</body></message>"
                            % (rcp.bare, mid, mid, snd.user))
            if n % KILL_EVERY == KILL_EVERY - 1:
                victims = [c for c in self.clients if c.ready and not c.reconnecting]
                if victims:
                    v = rng.choice(victims)
                    v.kill()
                    r = rng.random()
                    if r < 0.60:
                        mode, delay = 'resume', rng.uniform(0.0, 0.8)
                    elif r < 0.70:
                        mode, delay = 'resume-killed', rng.uniform(0.0, 0.3)
                    elif r < 0.85:
                        mode, delay = 'fresh', rng.uniform(0.0, 0.8)
                    else:
                        mode, delay = 'expire', RESUME_TIMEOUT + rng.uniform(1.0, 1.5)
                    reconnects.append(self.spawn(v.reconnect(mode, delay)))
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            elif n % 20 == 0:
                await asyncio.sleep(0)
        t_send = time.monotonic() - self.t0
        await asyncio.wait_for(asyncio.gather(*reconnects, return_exceptions=True), 3 * TIMEOUT)
        # everyone up again; let the acks settle: every client's stanzas acked
        down = [c.user for c in self.clients if not c.ready]
        if down:
            self.note('still down after the reconnects: %s' % down)
            await asyncio.gather(*(c.reconnect('resume', 0) for c in self.clients if not c.ready))
        for c in self.clients:
            if c.ready:
                c.request()
        if not await self.until(lambda: all(not c.unacked for c in self.clients if c.ready), 15):
            self.note('unacked outbound after 15 s: %s' % {c.user: len(c.unacked) for c in self.clients
                                                            if c.unacked})
        await self.until(lambda: not self.missing(), 10)
        live_missing = len(self.missing())
        # clean close, fresh login, offline messages
        self.closing = True
        await asyncio.gather(*(c.close_cleanly() for c in self.clients))
        self.closing = False
        for i in range(0, len(self.clients), 10):
            await asyncio.gather(*(c.login_fresh() for c in self.clients[i:i + 10]))
        await self.until(lambda: not self.missing(), 15)
        self.closing = True
        await asyncio.gather(*(c.close_cleanly() for c in self.clients))
        for t in self.tasks:
            if not t.done():
                t.cancel()
        await asyncio.sleep(0)
        return {'login_s': t_login, 'send_s': t_send, 'live_missing': live_missing,
                'total_s': time.monotonic() - self.t0}


class SMChaosTests(ChatTestCase):
    server_config = {
        'log': {'level': 'info'},
        'limits': {'max_connections_per_ip': 1000},
        'sm': {'enabled': True, 'resume_timeout': '%ds' % RESUME_TIMEOUT, 'max_queue': 500,
               'ack_timeout': '30s', 'request_every': 5, 'request_interval': '5s'},
    }

    def test_chaos_no_message_lost(self):
        accounts = [self.new_user('x') for _ in range(N_CLIENTS)]
        world = World(self.server.c2s_tls_port, accounts)
        try:
            times = run_async(world.run(), timeout=80)
        finally:
            summary = self.summary(world)
            print('\n' + summary)
        missing = world.missing()
        dups = sum(n - 1 for n in world.received.values() if n > 1)
        self.assertEqual(len(world.sent), N_MESSAGES)
        print('chaos: phases %s' % {k: round(v, 1) for k, v in times.items()})
        self.assertFalse(world.misrouted, 'messages delivered to the wrong user: %s' % world.misrouted[:10])
        self.assertFalse(world.bounced, 'messages bounced with an error: %s' % world.bounced[:5])
        self.assertEqual(len(missing), 0, '%d of %d messages lost: %s\n%s'
                         % (len(missing), N_MESSAGES, missing[:20], summary))
        self.assertEqual(world.resume_failed_unexpected, 0,
                         'resumptions within the resume timeout failed\n%s' % summary)
        self.assertGreater(world.resumed, 0)
        self.assertEqual(world.dups['re-sent after <resume h/> acked it'], 0,
                         'the server re-sent stanzas the client had acknowledged\n%s' % summary)
        self.assertLess(dups, N_MESSAGES, 'more duplicates than messages')

    def summary(self, world):
        dups = sum(n - 1 for n in world.received.values() if n > 1)
        unique = sum(1 for n in world.received.values() if n)
        lines = ['chaos: clients=%d sent=%d received_unique=%d lost=%d duplicates=%d delayed(offline)=%d '
                 'kills=%d resume_killed=%d resumed=%d resume_failed_expected=%d resume_failed_unexpected=%d fresh_logins=%d '
                 'resent=%d server_closed=%d misrouted=%d bounced=%d'
                 % (len(world.clients), len(world.sent), unique, len(world.missing()), dups, world.delayed,
                    world.kills, world.resume_killed, world.resumed, world.resume_failed_expected, world.resume_failed_unexpected,
                    world.fresh, world.resent, world.server_closed, len(world.misrouted), len(world.bounced))]
        lines.append('chaos: duplicates by cause: %s' % dict(world.dups))
        if world.notes:
            lines.append('notes (%d):' % len(world.notes))
            lines += ['  ' + n for n in world.notes[:40]]
        return '\n'.join(lines)


if __name__ == '__main__':
    unittest.main()
