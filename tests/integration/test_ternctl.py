"""ternctl user management against a running ternd, and ternd --check-config."""

import re
import shutil
import tempfile
import unittest
from pathlib import Path

from harness import RawStream, TernTestCase, check_config, require_binaries, to_yaml


def out(r):
    return (r.stdout or '') + (r.stderr or '')


class CtlTestCase(TernTestCase):
    """Helpers for the ternctl tests (no tests of its own)."""
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


class TernctlTests(CtlTestCase):

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


IMPORTED = r'ternctl: imported %d accounts? \(%d skipped\) in \d+\.\d s'


class TernctlImportTests(CtlTestCase):
    """ternctl import while ternd runs (the offline case is below)."""

    def names(self, *bases):
        """Fresh usernames for this test: alpha -> alpha17 ..."""
        n = next(self._user_counter)
        return ['%s%d' % (b, n) for b in bases]

    def write(self, data):
        """Write an import file (str or bytes) into the server's dir; returns its path."""
        p = self.server.tmpdir / ('accounts-%d.txt' % next(self._user_counter))
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def listed(self):
        r = self.ctl('listusers')
        self.assertCtl(r, 0)
        return set(r.stdout.splitlines())

    def assertNoPasswords(self, r, *passwords):
        for pw in passwords:
            self.assertNotIn(pw, out(r), 'a password was printed')

    def test_import_then_login(self):
        a, b, c, d = self.names('imp', 'tab', 'jid', 'crlf')
        pw = {a: 'with two spaces ', b: 'tab-pw', c: 'jid-pw', d: 'crlf-pw'}
        # ZOË is prepared as a localpart (RFC 7622): lower case, so "zoë"
        zoe, zoe_pw = 'ZOË' + a[3:], 'zoë-pw'
        p = self.write('# accounts moved from the old server\n'
                       '\n'
                       '%s %s\n'
                       '%s\t%s\n'
                       '   \n'
                       '%s@localhost %s\n'
                       '%s %s\r\n'
                       '# the end\n'
                       '%s %s' % (a, pw[a], b, pw[b], c, pw[c], d, pw[d], zoe, zoe_pw))
        r = self.ctl('import', p)
        self.assertCtl(r, 0, IMPORTED % (5, 0))
        self.assertNoPasswords(r, *pw.values(), zoe_pw)
        users = self.listed()
        for u in (a, b, c, d, zoe.lower()):
            self.assertIn(u + '@localhost', users)
        self.assertNotIn(zoe + '@localhost', users)
        # the space inside the password and the trailing one are part of it
        rs = self.raw()
        self.assertEqual(rs.login(a, pw[a], resource='r'), '%s@localhost/r' % a)
        self.assertEqual(self.plain(a, 'with two spaces'), 'not-authorized')
        rs = self.raw()
        self.assertEqual(rs.login(zoe.lower(), zoe_pw, mech='SCRAM-SHA-1', resource='r'),
                         '%s@localhost/r' % zoe.lower())
        for u in (b, c, d):
            self.assertEqual(self.plain(u, pw[u]), 'success', u)

    def test_bad_lines_reported_with_line_numbers_none_created(self):
        good, other = self.names('good', 'other')
        p = self.write('%s good-secret-1\n'        # 1 fine
                       'nopassword\n'              # 2
                       'bad/name secret-2\n'       # 3
                       '%s \n'                     # 4 empty password
                       '# comment\n'               # 5
                       '\tsecret-3\n'              # 6 no username
                       '%s@example.org secret-4\n'  # 7 other domain
                       '%s ctl\x01secret-5\n'      # 8 SASLprep refuses a control character
                       '%s  secret-6\n'             # 9 two spaces: the password would start with one
                       % (good, other, other, other, other))
        r = self.ctl('import', p)
        self.assertCtl(r, 1)
        self.assertEqual(r.stdout, '')
        lines = r.stderr.splitlines()
        expect = [
            (2, r'no password'),
            (3, r"'bad/name': not a valid username"),
            (4, r'empty password refused'),
            (6, r'no username'),
            (7, r'%s@example.org: not a user of this server' % other),
            (8, r'password refused: .*SASLprep'),
            (9, r'the password starts with a space: put exactly one TAB or space'),
        ]
        self.assertEqual(len(lines), len(expect) + 1, r.stderr)
        for line, (n, pattern) in zip(lines, expect):
            self.assertRegex(line, r'^%s:%d: %s' % (re.escape(str(p)), n, pattern))
        self.assertEqual(lines[-1], 'ternctl: 7 bad lines in %s; no account imported' % p)
        self.assertNoPasswords(r, *('good-secret-1', 'secret-2', 'secret-3', 'secret-4',
                                    'secret-5', 'secret-6'))
        # all or nothing: the good line was not imported either
        self.assertNotIn(good + '@localhost', self.listed())

    def test_duplicate_in_file(self):
        dup, fine = self.names('dup', 'fine')
        p = self.write('%s pw-1\n%s pw-2\n%s pw-3\n%s@LOCALHOST pw-4\n'
                       % (dup, fine, dup.upper(), dup))
        r = self.ctl('import', p)
        self.assertCtl(r, 1)
        self.assertEqual(r.stderr.splitlines(), [
            '%s:3: user %s@localhost is already on line 1' % (p, dup),
            '%s:4: user %s@localhost is already on line 1' % (p, dup),
            'ternctl: 2 bad lines in %s; no account imported' % p,
        ])
        users = self.listed()
        self.assertNotIn(dup + '@localhost', users)
        self.assertNotIn(fine + '@localhost', users)

    def test_existing_account(self):
        (new,) = self.names('new')
        p = self.write('%s new-pw\nalice hijack\n' % new)
        r = self.ctl('import', p)
        self.assertCtl(r, 1)
        self.assertEqual(r.stderr.splitlines(), [
            '%s:2: user alice@localhost already exists' % p,
            'ternctl: 1 bad line in %s; no account imported' % p,
        ])
        self.assertNotIn(new + '@localhost', self.listed())
        self.assertEqual(self.plain('alice', 'alice-Secret-1'), 'success')

        # --skip-existing: alice is left alone, the new account is created
        r = self.ctl('import', '--skip-existing', p)
        self.assertCtl(r, 0, IMPORTED % (1, 1))
        self.assertEqual(self.plain('alice', 'alice-Secret-1'), 'success')
        self.assertEqual(self.plain('alice', 'hijack'), 'not-authorized')
        self.assertEqual(self.plain(new, 'new-pw'), 'success')
        # run again: everything is there already
        r = self.ctl('import', '--skip-existing', p)
        self.assertCtl(r, 0, IMPORTED % (0, 2))

    def test_stdin(self):
        a, b = self.names('in', 'dash')
        r = self.ctl('import', input='%s stdin-pw\n' % a)
        self.assertCtl(r, 0, IMPORTED % (1, 0))
        r = self.ctl('import', '-', input='# via -\n%s dash-pw\n' % b)
        self.assertCtl(r, 0, IMPORTED % (1, 0))
        self.assertEqual(self.plain(a, 'stdin-pw'), 'success')
        self.assertEqual(self.plain(b, 'dash-pw'), 'success')
        # problems on stdin are named so
        r = self.ctl('import', input='# x\n%s again\n' % a)
        self.assertCtl(r, 1)
        self.assertIn('stdin:2: user %s@localhost already exists' % a, r.stderr)

    def test_only_comments_and_blank_lines(self):
        r = self.ctl('import', self.write('# nothing yet\n\n \t \n#alice x\n'))
        self.assertCtl(r, 0, IMPORTED % (0, 0))
        r = self.ctl('import', self.write(''))
        self.assertCtl(r, 0, IMPORTED % (0, 0))

    def test_usage_and_file_errors(self):
        p = self.write('')
        for args in (('import', p, p), ('import', '--update', p), ('import', '-x')):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 2, out(r))
                self.assertRegex(r.stderr, r'(?i)usage')
        missing = self.server.tmpdir / 'no-such-file.txt'
        r = self.ctl('import', missing)
        self.assertCtl(r, 1, r'ternctl: %s: No such file or directory' % re.escape(str(missing)))


class TernctlImportOfflineTests(CtlTestCase):
    """ternctl import with ternd stopped; the server then uses the accounts."""
    users = {}

    def test_import_without_server(self):
        self.assertEqual(self.server.stop(), 0)
        r = self.ctl('import', input='off1 offline-pw-1\noff2 offline pw 2\n')
        self.assertCtl(r, 0, IMPORTED % (2, 0))
        self.server.restart()
        rs = self.raw()
        self.assertEqual(rs.login('off2', 'offline pw 2', resource='r'), 'off2@localhost/r')
        self.assertEqual(self.plain('off1', 'offline-pw-1'), 'success')


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
