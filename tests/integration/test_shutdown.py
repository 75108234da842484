"""SIGTERM: every stream gets system-shutdown, then ternd exits 0."""

import signal
import time
import unittest

from harness import RawStream, SlixClient, TernServer, TIMEOUT, run_async


class ShutdownTests(unittest.TestCase):

    def start_server(self):
        srv = TernServer(name='shutdown')
        self.addCleanup(srv.cleanup)
        srv.start()
        srv.adduser('alice', 'alice-Secret-1')
        srv.adduser('bob', 'bob-Secret-2')
        return srv

    def raw(self, port, **kw):
        rs = RawStream(port, **kw)
        self.addCleanup(rs.close)
        return rs

    def test_sigterm_system_shutdown_to_every_stream(self):
        srv = self.start_server()
        # raw streams in various states
        authed = self.raw(srv.c2s_port)
        authed.login('alice', 'alice-Secret-1', resource='raw')
        authed_tls = self.raw(srv.c2s_tls_port, direct_tls=True)
        authed_tls.login('bob', 'bob-Secret-2', resource='rawtls', mech='PLAIN')
        fresh = self.raw(srv.c2s_port)
        fresh.open_stream()
        tls_unauthed = self.raw(srv.c2s_port)
        tls_unauthed.open_stream()
        tls_unauthed.starttls()
        tls_unauthed.open_stream()

        async def go():
            c = SlixClient(srv, 'alice', 'alice-Secret-1', resource='slix')
            try:
                outcome = await c.start()
                self.assertEqual(outcome, 'session_start', c.summary())
                srv.signal(signal.SIGTERM)
                await c.wait_for('stream_error', timeout=TIMEOUT)
                self.assertEqual(c.stream_error_condition, 'system-shutdown', c.summary())
                await c.wait_for('disconnected', timeout=TIMEOUT)
            finally:
                await c.stop()
        run_async(go())

        for name, rs in (('authenticated', authed), ('direct-tls authenticated', authed_tls),
                         ('unauthenticated', fresh), ('tls unauthenticated', tls_unauthed)):
            with self.subTest(stream=name):
                info = rs.expect_stream_error()
                self.assertEqual(info.condition, 'system-shutdown', rs.text[-2000:])
                self.assertTrue(info.stream_closed_tag, 'no </stream:stream>: %s' % rs.text[-2000:])
        rc = srv.wait(timeout=TIMEOUT)
        self.assertEqual(rc, 0, 'ternd exit status after SIGTERM\n' + srv.log_tail())

    def test_sigterm_idle_server_exits_0(self):
        srv = self.start_server()
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait(timeout=TIMEOUT)
        self.assertEqual(rc, 0, srv.log_tail())
        self.assertLess(time.monotonic() - t0, TIMEOUT)
        # and it no longer listens
        with self.assertRaises(OSError):
            RawStream(srv.c2s_port, timeout=2).close()


if __name__ == '__main__':
    unittest.main()
