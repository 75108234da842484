"""ternctl user management against a running ternd, and ternd --check-config."""

import re
import shutil
import tempfile
import unittest
from pathlib import Path

from harness import RawStream, TernTestCase, check_config, require_binaries, to_yaml


def out(r):
    return (r.stdout or '') + (r.stderr or '')


class TernctlTests(TernTestCase):
    users = {'alice': 'alice-Secret-1'}
    # deliberate wrong-password logins below: keep the auth ban out of the way
    server_config = {'auth': {'max_failures': 1000}}

    def ctl(self, *args, input=None):
        return self.server.ternctl(*args, input=input)

    def plain(self, user, password):
        rs = self.raw()
        return RawStream.sasl_condition(rs.authenticate(user, password, 'PLAIN'))

    def scram(self, user, password, mech='SCRAM-SHA-256'):
        rs = self.raw()
        return RawStream.sasl_condition(rs.authenticate(user, password, mech))

    def assertCtl(self, r, code, pattern=None):
        self.assertEqual(r.returncode, code, 'ternctl exit %d, expected %d; output:\n%s'
                         % (r.returncode, code, out(r)))
        if pattern:
            self.assertRegex(out(r), pattern)

    def test_server_is_running(self):
        # every ternctl test here runs against a live ternd
        self.assertTrue(self.server.running())

    def test_adduser_then_login(self):
        r = self.ctl('adduser', 'carol', input='carol-pw-1\n')
        self.assertCtl(r, 0, r'ternctl: user carol@localhost created')
        self.assertEqual(self.plain('carol', 'carol-pw-1'), 'success')
        self.assertEqual(self.scram('carol', 'carol-pw-1', 'SCRAM-SHA-256'), 'success')
        self.assertEqual(self.scram('carol', 'carol-pw-1', 'SCRAM-SHA-1'), 'success')
        self.assertEqual(self.plain('carol', 'carol-pw-2'), 'not-authorized')
        rs = self.raw()
        self.assertEqual(rs.login('carol', 'carol-pw-1', resource='r'), 'carol@localhost/r')

    def test_adduser_duplicate(self):
        name, _ = self.new_user('dup')
        r = self.ctl('adduser', name, input='other\n')
        self.assertCtl(r, 1, r'ternctl: user %s@localhost already exists' % re.escape(name))
        # the original password is untouched
        r = self.ctl('adduser', 'alice', input='hijack\n')
        self.assertCtl(r, 1, r'ternctl: user alice@localhost already exists')
        self.assertEqual(self.plain('alice', 'alice-Secret-1'), 'success')
        self.assertEqual(self.plain('alice', 'hijack'), 'not-authorized')

    def test_listusers_sorted_bare_jids(self):
        created = []
        for base in ('zulu', 'alpha', 'mike'):
            name, _ = self.new_user(base)
            created.append(name + '@localhost')
        r = self.ctl('listusers')
        self.assertCtl(r, 0)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        for jid in created + ['alice@localhost']:
            self.assertIn(jid, lines, r.stdout)
        self.assertEqual(lines, sorted(lines), 'listusers output not sorted:\n%s' % r.stdout)
        for l in lines:
            self.assertRegex(l, r'^[^@/\s]+@localhost$', 'not a bare JID: %r' % l)
        self.assertEqual(len(lines), len(set(lines)))

    def test_passwd(self):
        name, old = self.new_user('pw')
        self.assertEqual(self.plain(name, old), 'success')
        r = self.ctl('passwd', name, input='brand-new-pw\n')
        self.assertCtl(r, 0)
        self.assertEqual(self.plain(name, old), 'not-authorized')
        self.assertEqual(self.scram(name, old), 'not-authorized')
        self.assertEqual(self.plain(name, 'brand-new-pw'), 'success')
        self.assertEqual(self.scram(name, 'brand-new-pw', 'SCRAM-SHA-256'), 'success')
        self.assertEqual(self.scram(name, 'brand-new-pw', 'SCRAM-SHA-1'), 'success')
        self.assertEqual(self.scram(name, 'brand-new-pw', 'SCRAM-SHA-256-PLUS'), 'success')

    def test_deluser(self):
        name, pw = self.new_user('del')
        self.assertEqual(self.plain(name, pw), 'success')
        r = self.ctl('deluser', name)
        self.assertCtl(r, 0)
        self.assertEqual(self.plain(name, pw), 'not-authorized')
        self.assertEqual(self.scram(name, pw), 'not-authorized')
        r = self.ctl('listusers')
        self.assertCtl(r, 0)
        self.assertNotIn(name + '@localhost', r.stdout.splitlines())
        r = self.ctl('deluser', name)
        self.assertCtl(r, 1, r'ternctl: no such user: %s@localhost' % re.escape(name))
        # the name can be registered again
        r = self.ctl('adduser', name, input='again-pw\n')
        self.assertCtl(r, 0, r'ternctl: user %s@localhost created' % re.escape(name))
        self.assertEqual(self.plain(name, 'again-pw'), 'success')

    def test_unknown_user_messages(self):
        r = self.ctl('passwd', 'ghost', input='x\n')
        self.assertCtl(r, 1, r'ternctl: no such user: ghost@localhost')
        r = self.ctl('deluser', 'ghost')
        self.assertCtl(r, 1, r'ternctl: no such user: ghost@localhost')
        self.assertNotIn('ghost@localhost', self.ctl('listusers').stdout.splitlines())

    def test_usage_errors_exit_2(self):
        for args in ((), ('frobnicate',), ('adduser',), ('passwd',), ('deluser',)):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 2, 'args %r: exit %d\n%s' % (args, r.returncode, out(r)))
                self.assertRegex(r.stderr, r'(?i)usage', 'no usage on stderr for %r' % (args,))
        # no config at all
        r = self.server.ternctl(config=False)
        self.assertEqual(r.returncode, 2, out(r))
        self.assertRegex(r.stderr, r'(?i)usage')


class CheckConfigTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require_binaries()
        cls.dir = Path(tempfile.mkdtemp(prefix='tern-cfg-'))
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)

    def write(self, name, text):
        p = self.dir / name
        p.write_text(text)
        return p

    def test_good_config(self):
        data = self.dir / 'data-good'
        data.mkdir(exist_ok=True)
        p = self.write('good.yaml', to_yaml({
            'domain': 'localhost',
            'data_dir': str(data),
            'log': {'level': 'debug'},
            'c2s': {'address': '127.0.0.1', 'port': 5222, 'starttls_required': True},
            'c2s_tls': {'address': '127.0.0.1', 'port': 5223},
            'storage': {'backend': 'sqlite', 'path': str(data / 'tern.db')},
            'auth': {'scram_iterations': 4096, 'allow_plain': True, 'max_failures': 5,
                     'failure_window': '30s', 'ban_time': '5m'},
            'limits': {'max_stanza_size': '256KiB', 'max_preauth_stanza_size': '8KiB', 'max_depth': 32,
                       'preauth_timeout': '60s', 'max_connections_per_ip': 100, 'max_connections': 100000},
        }) + '\n')
        r = check_config(p)
        self.assertEqual(r.returncode, 0, out(r))
        self.assertIn('%s: configuration OK' % p, out(r))

    def test_empty_config_is_valid(self):
        # every key is optional
        p = self.write('empty.yaml', '# nothing\n')
        r = check_config(p)
        self.assertEqual(r.returncode, 0, out(r))
        self.assertIn('%s: configuration OK' % p, out(r))

    def test_bad_port_names_file_line_and_key(self):
        p = self.write('bad-port.yaml',
                       '# Tern test config\n'
                       'domain: localhost\n'
                       '\n'
                       'c2s:\n'
                       '  address: 127.0.0.1\n'
                       '  port: not-a-port\n')
        r = check_config(p)
        self.assertEqual(r.returncode, 1, out(r))
        self.assertRegex(out(r), r"%s:6: key 'c2s\.port': expected" % re.escape(str(p)))

    def test_port_out_of_range(self):
        p = self.write('big-port.yaml', 'c2s:\n  port: 70000\n')
        r = check_config(p)
        self.assertEqual(r.returncode, 1, out(r))
        self.assertRegex(out(r), r"%s:2: key 'c2s\.port': expected" % re.escape(str(p)))

    def test_bad_size_names_key(self):
        p = self.write('bad-size.yaml', 'domain: localhost\nlimits:\n  max_depth: 32\n  max_stanza_size: huge\n')
        r = check_config(p)
        self.assertEqual(r.returncode, 1, out(r))
        self.assertRegex(out(r), r"%s:4: key 'limits\.max_stanza_size': expected" % re.escape(str(p)))

    def test_bad_duration_names_key(self):
        p = self.write('bad-dur.yaml', 'auth:\n  ban_time: forever\n')
        r = check_config(p)
        self.assertEqual(r.returncode, 1, out(r))
        self.assertRegex(out(r), r"%s:2: key 'auth\.ban_time': expected" % re.escape(str(p)))

    def test_bad_bool_names_key(self):
        p = self.write('bad-bool.yaml', 'c2s:\n  starttls_required: perhaps\n')
        r = check_config(p)
        self.assertEqual(r.returncode, 1, out(r))
        self.assertRegex(out(r), r"%s:2: key 'c2s\.starttls_required': expected" % re.escape(str(p)))


if __name__ == '__main__':
    unittest.main()
