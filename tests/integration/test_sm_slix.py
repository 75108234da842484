"""Stream management (XEP-0198) with a real client library: slixmpp's
xep_0198 plugin enables SM, loses its connection abruptly, reconnects and
resumes; the messages sent meanwhile arrive exactly once."""

import asyncio
import socket
import struct
import unittest

from harness import SlixClient, TIMEOUT
from test_chat_common import M
from test_sm_common import SMTestCase


class SlixSMTests(SMTestCase):
    server_config = {'sm': {'enabled': True, 'resume_timeout': '30s', 'request_every': 5}}

    def test_slixmpp_enables_and_resumes(self):
        acc_a, acc_b = self.new_user('xa'), self.new_user('xb')
        bob = self.peer(acc_b, 'b', available=True)
        alice_jid = '%s@localhost/slix' % acc_a[0]
        before = ['sx-pre-%d' % i for i in range(7)]
        during = ['sx-dur-%d' % i for i in range(3)]

        async def go():
            c = SlixClient(self.server, acc_a[0], acc_a[1], resource='slix', plugins=('xep_0198',))
            x = c.xmpp
            events = {n: asyncio.Event() for n in ('sm_enabled', 'session_resumed', 'sm_failed', 'disconnected')}
            for n, ev in events.items():
                x.add_event_handler(n, (lambda e: lambda *_: e.set())(ev))
            got = []
            x.add_event_handler('message', lambda m: got.append(m['id']))
            try:
                self.assertEqual(await c.start(), 'session_start', c.summary())
                await asyncio.wait_for(events['sm_enabled'].wait(), TIMEOUT)
                x.send_presence()
                for i in before:
                    bob.message(alice_jid, 'hello %s' % i, id_=i)
                deadline = asyncio.get_running_loop().time() + TIMEOUT
                while not set(before) <= set(got):
                    self.assertLess(asyncio.get_running_loop().time(), deadline,
                                    'slixmpp got %s\n%s' % (got, c.summary()))
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)          # let slixmpp answer the server's <r/>
                # abrupt loss of the connection
                events['disconnected'].clear()
                sock = x.transport.get_extra_info('socket')
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                x.transport.abort()
                await asyncio.wait_for(events['disconnected'].wait(), TIMEOUT)
                for i in during:
                    bob.message(alice_jid, 'while away %s' % i, id_=i)
                await asyncio.sleep(0.2)
                x.connect(('127.0.0.1', c.port), force_starttls=True)
                done, _ = await asyncio.wait([asyncio.ensure_future(events['session_resumed'].wait()),
                                              asyncio.ensure_future(events['sm_failed'].wait())],
                                             timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
                self.assertTrue(events['session_resumed'].is_set(),
                                'slixmpp did not resume (sm_failed=%s)\n%s'
                                % (events['sm_failed'].is_set(), c.summary()))
                deadline = asyncio.get_running_loop().time() + TIMEOUT
                while not set(during) <= set(got):
                    self.assertLess(asyncio.get_running_loop().time(), deadline,
                                    'after resumption slixmpp got %s\n%s' % (got, c.summary()))
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.4)
                return got
            finally:
                await c.stop()

        from harness import run_async
        got = run_async(go(), timeout=6 * TIMEOUT)
        ids = [i for i in got if i and i.startswith('sx-')]
        dups = sorted({i for i in ids if ids.count(i) > 1})
        self.assertEqual(sorted(set(ids)), sorted(before + during))
        self.assertFalse(dups, 'slixmpp received these more than once: %s (all: %s)' % (dups, ids))
        bob.quiet(M('message', type='error'), 'an error for a message')


if __name__ == '__main__':
    unittest.main()
