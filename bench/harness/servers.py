"""The servers under test: how each is installed, configured, given accounts, started and stopped.

Every server runs in the foreground from its own binary with its own config and
data directory under the run's temporary directory, pinned to the server core,
listening on loopback only. Nothing here touches a system service.
"""
import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import uuid

import procstat

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ITERATIONS = 4096  # PBKDF2 iterations for every server's accounts (Tern's default)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout):
    """Wait until 127.0.0.1:port accepts a connection; False if proc died or time ran out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def missing_packages(pkgs):
    out = []
    for p in pkgs:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        if "install ok installed" not in r.stdout:
            out.append(p)
    return out


def apt_install(pkgs, log):
    """Install Debian packages that are missing; returns None or why it could not."""
    missing = missing_packages(pkgs)
    if not missing:
        return None
    if os.geteuid() != 0 and not shutil.which("sudo"):
        return f"needs root to install {' '.join(missing)}"
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"installing {' '.join(missing)} with apt-get")
    r = subprocess.run(sudo + ["apt-get", "update", "-qq"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    # Debian's policy-rc.d (or its absence in a container) decides whether the
    # packaged services start; we never use them, the run starts its own copies.
    r = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] +
                       missing, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=1200)
    if r.returncode != 0:
        return f"apt-get install {' '.join(missing)} failed: {r.stdout[-500:]}"
    return None


def scram_keys(password, salt, iterations):
    """SCRAM-SHA-1 StoredKey and ServerKey (RFC 5802 §3)."""
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha1").digest()
    server_key = hmac.new(salted, b"Server Key", "sha1").digest()
    return hashlib.sha1(client_key).digest(), server_key


class Server:
    """Base: subclasses fill in the names, packages, config and account creation."""
    name = "?"
    packages = []
    # What the server can do, for workloads that need it.
    features = {}
    storage = ""
    sm_note = ""

    def __init__(self, workdir, cert, key, cpu, log):
        self.dir = os.path.join(workdir, self.name)
        self.cert, self.key, self.cpu, self.log = cert, key, cpu, log
        self.port = free_port()
        self.component_port = free_port()
        self.proc = None
        self.pid = None  # the process measured
        os.makedirs(self.dir, exist_ok=True)
        self.logfile = os.path.join(self.dir, "server.log")

    def unavailable(self):
        """None when the server can run here, else why not."""
        return None

    def install(self):
        return apt_install(self.packages, self.log)

    def taskset(self):
        return ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def log_tail(self, n=2000):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


class Tern(Server):
    name = "tern"
    storage = "SQLite, WAL, synchronous=FULL (group commit on a store thread)"

    # What a ternd build can do is found out, not assumed: each feature is a config
    # fragment that `ternd --check-config` accepts only if the build knows its keys.
    # Tern grows fast; a workload runs as soon as its feature is there.
    PROBES = {
        "sm": "sm:\n  enabled: true\n",
        "offline": "offline:\n  max_messages: 1000\n",
        "component": ("component:\n  address: 127.0.0.1\n  port: {component_port}\n"
                      "components:\n  push.localhost: bench-secret\n"),
        "push": "push:\n  include_body: true\n",
    }

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        build = os.environ.get("TERN_BUILD", os.path.join(ROOT, "build"))
        self.ternd = os.path.join(build, "ternd")
        self.ternctl = os.path.join(build, "ternctl")
        self.config = os.path.join(self.dir, "ternd.yaml")
        self.features = {}

    @property
    def sm_note(self):
        return "on (XEP-0198)" if self.features.get("sm") else "off (XEP-0198 not in this build)"

    def unavailable(self):
        for b in (self.ternd, self.ternctl):
            if not os.access(b, os.X_OK):
                return f"{b} not built (run `make build`)"
        # Run copies: a rebuild of build/ during the run (make, an editor's build on
        # save) would otherwise swap or remove the binary between two workloads.
        if not getattr(self, "copied", False):
            for attr in ("ternd", "ternctl"):
                dst = os.path.join(self.dir, os.path.basename(getattr(self, attr)))
                shutil.copy2(getattr(self, attr), dst)
                setattr(self, attr, dst)
            self.copied = True
        self.features = self.probe()
        return None

    def probe(self):
        found = {}
        path = os.path.join(self.dir, "probe.yaml")
        for name, frag in self.PROBES.items():
            with open(path, "w") as f:
                f.write(f"domain: localhost\ndata_dir: {self.dir}/probe\n" +
                        frag.format(component_port=self.component_port))
            r = subprocess.run([self.ternd, "--check-config", "-c", path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            found[name] = r.returncode == 0
        os.unlink(path)
        # Push needs all three: the module, somewhere to store, a component to push to.
        found["push"] = found["push"] and found["component"]
        return found

    def install(self):
        return None

    def prepare(self, users, password):
        extra = "".join(frag.format(component_port=self.component_port)
                        for name, frag in self.PROBES.items() if self.features.get(name))
        with open(self.config, "w") as f:
            f.write(f"""# written by bench/harness for one benchmark run
domain: localhost
data_dir: {self.dir}/var
log:
  level: warn
tls:
  certificate: {self.cert}
  key: {self.key}
c2s:
  address: 127.0.0.1
  port: {self.port}
  starttls_required: true
c2s_tls:
  port: 0
storage:
  backend: sqlite
auth:
  scram_iterations: {ITERATIONS}
  allow_plain: true
  max_failures: 1000000
limits:
  max_connections_per_ip: 1000000
  max_connections: 1000000
""" + extra)
        # One `ternctl import` for every account: it derives the keys on every core
        # and stores them in one transaction (docs/ternctl.md).
        accounts = os.path.join(self.dir, "accounts.txt")
        fd = os.open(accounts, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"bench{i}\t{password}\n" for i in range(users))
        try:
            r = subprocess.run([self.ternctl, "-c", self.config, "import", accounts],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=1200)
        finally:
            os.unlink(accounts)
        if r.returncode != 0:
            raise RuntimeError(f"ternctl import failed ({r.returncode}): {r.stdout.strip()[-500:]}")

    def start(self):
        out = open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.taskset() + [self.ternd, "-c", self.config],
                                     stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        out.close()
        if not wait_port(self.port, self.proc, 30):
            raise RuntimeError(f"ternd did not start: {self.log_tail()}")
        self.pid = self.proc.pid  # taskset execs ternd: same pid


class Prosody(Server):
    name = "prosody"
    packages = ["prosody", "prosody-modules", "lua-dbi-sqlite3"]
    features = {"sm": True, "push": True, "offline": True, "component": True}
    storage = ("SQLite through mod_storage_sql (SQLite defaults: rollback journal, "
               "synchronous=FULL)")
    sm_note = "on (mod_smacks)"

    def unavailable(self):
        if not shutil.which("prosody") and not missing_packages(self.packages):
            return "prosody installed but not on PATH"
        return None

    def prepare(self, users, password):
        d = self.dir
        os.makedirs(f"{d}/data", exist_ok=True)
        os.makedirs(f"{d}/certs", exist_ok=True)
        shutil.copy(self.cert, f"{d}/certs/localhost.crt")
        shutil.copy(self.key, f"{d}/certs/localhost.key")
        self.config = f"{d}/prosody.cfg.lua"
        self.db = f"{d}/prosody.sqlite"
        with open(self.config, "w") as f:
            f.write(f"""-- written by bench/harness for one benchmark run
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
run_as_root = true
daemonize = false
log = {{ warn = "{self.logfile}" }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks"; "cloud_notify"; "offline" }}
modules_disabled = {{ "s2s" }}
c2s_ports = {{ {self.port} }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ {self.component_port} }}
component_interfaces = {{ "127.0.0.1" }}
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "sql"
sql = {{ driver = "SQLite3", database = "{self.db}" }}
tls_profile = "modern"
push_notification_with_body = true  -- the sink measures send -> push latency from the body
ssl = {{ certificate = "{d}/certs/localhost.crt"; key = "{d}/certs/localhost.key" }}
VirtualHost "localhost"
Component "push.localhost"
    component_secret = "bench-secret"
""")
        # One account through prosodyctl creates the schema and shows the row format.
        r = subprocess.run(["prosodyctl", "--config", self.config, "register", "bench0",
                            "localhost", password], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        db = sqlite3.connect(self.db, timeout=30)
        keys = {k for (k,) in db.execute(
            "SELECT key FROM prosody WHERE user='bench0' AND store='accounts'")}
        want = {"stored_key", "server_key", "salt", "iteration_count"}
        if keys != want:
            raise RuntimeError(f"prosodyctl register did not write the expected account "
                               f"fields ({sorted(keys)}): {r.stdout[-500:]}")
        # The rest directly: internal_hashed keeps hex SCRAM-SHA-1 keys, the salt as a
        # string and the count as a number. One salt for all keeps setup fast; the
        # server does the same work per login either way.
        salt = str(uuid.uuid4())
        stored, server = scram_keys(password, salt.encode(), ITERATIONS)
        rows = []
        for i in range(users):
            u = f"bench{i}"
            rows += [("localhost", u, "accounts", "stored_key", "string", stored.hex()),
                     ("localhost", u, "accounts", "server_key", "string", server.hex()),
                     ("localhost", u, "accounts", "iteration_count", "number", str(ITERATIONS)),
                     ("localhost", u, "accounts", "salt", "string", salt)]
        db.execute("DELETE FROM prosody WHERE store='accounts'")
        db.executemany("INSERT INTO prosody VALUES (?,?,?,?,?,?)", rows)
        db.commit()
        db.close()

    def start(self):
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(self.taskset() + ["prosody", "--config", self.config, "-F"],
                                     stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        out.close()
        if not wait_port(self.port, self.proc, 60):
            raise RuntimeError(f"prosody did not start: {self.log_tail()}")
        self.pid = self.proc.pid  # taskset execs the lua interpreter: same pid


class Ejabberd(Server):
    name = "ejabberd"
    packages = ["ejabberd", "erlang-p1-sqlite3"]
    features = {"sm": True, "push": True, "offline": True, "component": True}
    storage = ("SQLite through ejabberd_sql (SQLite defaults: rollback journal, "
               "synchronous=FULL); Mnesia for ejabberd's own tables")
    sm_note = "on (mod_stream_mgmt)"
    user = "ejabberd"

    def unavailable(self):
        if not shutil.which("ejabberdctl") and not missing_packages(self.packages):
            return "ejabberd installed but ejabberdctl not on PATH"
        if os.geteuid() != 0:
            return "running ejabberd as the ejabberd user needs root (setpriv)"
        return None

    def ctl(self, *args, timeout=60):
        """ejabberdctl as the ejabberd user, with this run's config, spool, logs and node."""
        d = self.dir
        env = dict(os.environ, HOME=d)
        # setpriv instead of ejabberdctl's own `su`: su resets the descriptor limit to
        # 1024, too few for W1.
        cmd = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups",
               "ejabberdctl", "--config-dir", d, "--config", f"{d}/ejabberd.yml", "--logs",
               f"{d}/log", "--spool", f"{d}/spool", "--node", self.node] + list(args)
        return cmd, env

    def prepare(self, users, password):
        d = self.dir
        os.makedirs(f"{d}/spool", exist_ok=True)
        os.makedirs(f"{d}/log", exist_ok=True)
        shutil.copy(self.cert, f"{d}/cert.pem")
        shutil.copy(self.key, f"{d}/key.pem")
        shutil.copy("/etc/ejabberd/inetrc", f"{d}/inetrc")
        self.node = f"ternbench{os.getpid()}@localhost"
        self.db = f"{d}/ejabberd.db"
        self.logfile = f"{d}/log/ejabberd.log"
        with open(f"{d}/ejabberd.yml", "w") as f:
            f.write(f"""# written by bench/harness for one benchmark run
hosts:
  - localhost
loglevel: warning
log_rotate_count: 0
hide_sensitive_log_data: true
certfiles:
  - {d}/cert.pem
  - {d}/key.pem
acme:
  auto: false
listen:
  -
    port: {self.port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    shaper: none
    backlog: 1024
    protocol_options:
      - "no_sslv3"
      - "no_tlsv1"
      - "no_tlsv1_1"
      - "no_tlsv1_2"
  -
    port: {self.component_port}
    ip: "127.0.0.1"
    module: ejabberd_service
    backlog: 1024
    hosts:
      "push.localhost":
        password: "bench-secret"
auth_method: sql
auth_password_format: scram
auth_scram_hash: sha
sql_type: sqlite
sql_database: {self.db}
default_db: sql
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 1000000
  c2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_offline: {{}}
  mod_stream_mgmt: {{}}
  mod_push:
    include_body: true
""")
        # The ejabberd user must reach its directory (the run's root is mode 0700).
        os.chmod(os.path.dirname(d), 0o755)
        subprocess.run(["chown", "-R", f"{self.user}:{self.user}", d], check=True)
        self.users, self.password = users, password

    def start(self):
        self.epmd_before = set(procstat.pids_by_comm("epmd"))
        cmd, env = self.ctl("foreground")
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(self.taskset() + cmd, env=env, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        out.close()
        if not wait_port(self.port, self.proc, 90):
            raise RuntimeError(f"ejabberd did not start: {self.log_tail()}")
        self.pid = procstat.find_descendant(self.proc.pid, "beam.smp", 10)
        if not self.pid:
            raise RuntimeError("ejabberd started but no beam.smp process was found")
        if not getattr(self, "users_added", False):
            self.add_users()
            self.users_added = True

    def add_users(self):
        # ejabberd creates its SQLite schema on first use: one account through
        # ejabberdctl, then the rest directly in the users table (scram format:
        # base64 StoredKey, ServerKey and salt).
        cmd, env = self.ctl("register", "bench0", "localhost", self.password)
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"ejabberdctl register failed: {r.stdout[-500:]}")
        db = sqlite3.connect(self.db, timeout=30)
        row = db.execute("SELECT iterationcount FROM users WHERE username='bench0'").fetchone()
        if not row:
            raise RuntimeError("ejabberdctl register wrote no row in the users table")
        salt = os.urandom(16)
        stored, server = scram_keys(self.password, salt, ITERATIONS)
        b64 = lambda b: base64.b64encode(b).decode()
        db.executemany(
            "INSERT OR REPLACE INTO users (username, password, serverkey, salt, iterationcount)"
            " VALUES (?,?,?,?,?)",
            [(f"bench{i}", b64(stored), b64(server), b64(salt), ITERATIONS)
             for i in range(1, self.users)])
        db.commit()
        db.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            cmd, env = self.ctl("stop")
            try:
                subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30, cwd=self.dir)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if self.pid and procstat.alive(self.pid):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        # erl started an epmd for the node; stop it only if it was not there before.
        for p in set(procstat.pids_by_comm("epmd")) - getattr(self, "epmd_before", set()):
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass


ALL = {"tern": Tern, "prosody": Prosody, "ejabberd": Ejabberd}
