"""Fixtures for Shoal's integration tests: a real PostgreSQL 15 and real `shoal` processes.

- `pg` (session): one throwaway cluster on a free loopback port, with roles for every server
  authentication method (scram_user, md5_user, pw_user; everything else trust).
- `pg_private` (function): a factory for a separate cluster, for tests that stop PostgreSQL.
- `role` / `role_db`: a fresh LOGIN role (and a database it owns) per test, so that counting
  backends in pg_stat_activity by usename/datname is unambiguous.
- `shoal`: a factory that writes a pgbouncer.ini, starts the binary, and checks at teardown that
  it did not crash (signal, AddressSanitizer/UBSan report). On failure the log tail is attached
  to the test report.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest

from helpers import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SHOAL_BIN = os.environ.get("SHOAL_BIN", os.path.join(REPO, "build", "shoal"))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
IS_ROOT = os.geteuid() == 0
if IS_ROOT:  # for the tests that start shoal themselves with the inherited environment
    os.environ.setdefault("SHOAL_ALLOW_ROOT", "1")
TEST_TIMEOUT = int(os.environ.get("SHOAL_TEST_TIMEOUT", "90"))

SCRAM_PW = "scram_pw"
MD5_PW = "md5_pw"
PLAIN_PW = "plain_pw"

# Also a state change outside the tables of src/pool/states.c (logged, not fatal, in Shoal).
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "WARNING: ThreadSanitizer", "illegal state change")

# ---------------------------------------------------------------------------------------
# ports


# ---------------------------------------------------------------------------------------
# PostgreSQL


def _as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if IS_ROOT else cmd


class PgCluster:
    def __init__(self, name="pg"):
        self.base = tempfile.mkdtemp(prefix="shoal-%s-" % name)
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "data")
        self.sockdir = self.base
        self.logfile = os.path.join(self.base, "postgres.log")
        self.port = free_port()
        self.host = "127.0.0.1"
        self._role_seq = 0
        if IS_ROOT:
            shutil.chown(self.base, "postgres", "postgres")

    def _run(self, cmd, check=True, timeout=60):
        r = subprocess.run(_as_postgres(cmd), capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s\n%s\n%s" % (
                cmd[0], r.returncode, r.stdout, r.stderr, self.log_tail()))
        return r

    def init(self):
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                   "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n".join([
                "",
                "listen_addresses = '127.0.0.1'",
                "port = %d" % self.port,
                "unix_socket_directories = '%s'" % self.sockdir,
                "max_connections = 200",
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "shared_buffers = 32MB",
                "log_connections = on",
                "log_disconnections = on",
                "log_line_prefix = '%m [%p] %u@%d '",
                "",
            ]))
        hba = []
        for user, method in (("scram_user", "scram-sha-256"), ("md5_user", "md5"),
                             ("pw_user", "password")):
            hba.append("local all %s %s" % (user, method))
            hba.append("host all %s 127.0.0.1/32 %s" % (user, method))
        hba.append("local all all trust")
        hba.append("host all all 127.0.0.1/32 trust")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("\n".join(hba) + "\n")
        return self

    def start(self):
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.logfile,
                   "-w", "-t", "30", "start"])
        return self

    def stop(self, mode="fast"):
        return self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode,
                          "-w", "-t", "30", "stop"], check=False)

    def setup_roles(self):
        self.sql("SET password_encryption = 'scram-sha-256'; "
                 "CREATE ROLE scram_user LOGIN PASSWORD '%s'" % SCRAM_PW)
        self.sql("SET password_encryption = 'md5'; "
                 "CREATE ROLE md5_user LOGIN PASSWORD '%s'" % MD5_PW)
        self.sql("CREATE ROLE pw_user LOGIN PASSWORD '%s'" % PLAIN_PW)
        self.sql("CREATE ROLE trust_user LOGIN")
        return self

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, n=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- SQL helpers ---------------------------------------------------------------------
    def connect(self, dbname="postgres", user="postgres", **kw):
        kw.setdefault("autocommit", True)
        return psycopg.connect(host=self.host, port=self.port, dbname=dbname, user=user,
                               connect_timeout=15, **kw)

    def sql(self, query, params=None, dbname="postgres", user="postgres"):
        """Run query directly on PostgreSQL (not through Shoal); rows or None."""
        with self.connect(dbname=dbname, user=user) as c:
            cur = c.execute(query, params)
            return cur.fetchall() if cur.description else None

    def backends(self, usename=None, datname=None, conn=None, extra="", params=()):
        """pids of client backends matching usename/datname, excluding the querying one."""
        q = ("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
             "AND pid <> pg_backend_pid()")
        args = []
        if usename is not None:
            q += " AND usename = %s"
            args.append(usename)
        if datname is not None:
            q += " AND datname = %s"
            args.append(datname)
        if extra:
            q += " AND " + extra
            args.extend(params)
        if conn is not None:
            return sorted(r[0] for r in conn.execute(q, args).fetchall())
        return sorted(r[0] for r in self.sql(q, args))

    def count_backends(self, usename=None, datname=None, conn=None):
        return len(self.backends(usename=usename, datname=datname, conn=conn))

    def create_role(self, hint="t", superuser=False):
        self._role_seq += 1
        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower())[:40].strip("_")
        name = "r%d_%s" % (self._role_seq, slug)
        self.sql('CREATE ROLE "%s" LOGIN%s' % (name, " SUPERUSER" if superuser else ""))
        return name

    def create_db(self, owner, name=None):
        name = name or "d_" + owner
        self.sql('CREATE DATABASE "%s" OWNER "%s"' % (name, owner))
        return name


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster("pg").init()
    try:
        cluster.start().setup_roles()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_private():
    """Factory for a separate cluster (same roles), destroyed after the test."""
    made = []

    def make():
        c = PgCluster("pgpriv").init()
        made.append(c)
        c.start().setup_roles()
        return c

    yield make
    for c in made:
        c.destroy()


class PgReplicaSet:
    """A primary and streaming replicas made with `pg_basebackup -R` (issue 18), each a
    PgCluster on its own loopback port and temp dir, run as the postgres user."""

    def __init__(self, nreplicas=2):
        self.primary = PgCluster("primary").init()
        with open(os.path.join(self.primary.data, "pg_hba.conf"), "a") as f:
            f.write("local replication all trust\nhost replication all 127.0.0.1/32 trust\n")
        self.primary.start().setup_roles()
        self.replicas = []
        try:
            for _ in range(nreplicas):
                self.replicas.append(self._replica())
        except Exception:
            self.destroy()
            raise

    def _replica(self):
        r = PgCluster("replica")
        r._run([os.path.join(PG_BIN, "pg_basebackup"), "-D", r.data, "-R", "-X", "stream", "-c", "fast",
                "-h", self.primary.host, "-p", str(self.primary.port), "-U", "postgres"],
               timeout=120)
        with open(os.path.join(r.data, "postgresql.conf"), "a") as f:
            f.write("\nport = %d\nunix_socket_directories = '%s'\nhot_standby = on\n"
                    % (r.port, r.sockdir))
        r.start()
        return r

    def wait_replayed(self, timeout=20):
        """Until every replica has replayed the primary's current WAL position."""
        lsn = self.primary.sql("SELECT pg_current_wal_insert_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        for r in self.replicas:
            while True:
                done = r.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0]
                if done:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("replica on port %d did not replay %s" % (r.port, lsn))
                time.sleep(0.05)

    def destroy(self):
        for r in self.replicas:
            r.destroy()
        self.primary.destroy()


@pytest.fixture(scope="module")
def pg_replicas():
    """A primary with two streaming replicas, made once per test module."""
    rs = PgReplicaSet(2)
    try:
        yield rs
    finally:
        rs.destroy()


def _test_slug(request):
    return request.node.name.replace("test_", "", 1)


@pytest.fixture
def role(pg, request):
    """A fresh trust-authenticated LOGIN role for this test."""
    return pg.create_role(_test_slug(request))


@pytest.fixture
def role_db(pg, role):
    """(role, database owned by role)."""
    return role, pg.create_db(role)


# ---------------------------------------------------------------------------------------
# Shoal


class ShoalProcess:
    def __init__(self, pg, databases, users, settings, userlist, verbose, extra_ini,
                 preexec_fn=None):
        self.pg = pg
        self.preexec_fn = preexec_fn  # runs in the child before exec (e.g. a lower RLIMIT)
        self.dir = tempfile.mkdtemp(prefix="shoal-")
        self.host = "127.0.0.1"
        self.ini = os.path.join(self.dir, "shoal.ini")
        self.logfile = os.path.join(self.dir, "shoal.log")
        self.databases = databases or {}
        self.users = users or {}
        self.settings = dict(settings or {})
        self.userlist = userlist
        self.verbose = verbose
        self.extra_ini = extra_ini
        self.proc = None
        self.returncode = None
        self.stopped_by_test = False
        self.conns = []
        self._log = None

    # -- config --------------------------------------------------------------------------
    def _db_line(self, name, spec):
        if isinstance(spec, str):
            return "%s = %s" % (name, spec)
        spec = dict(spec)
        spec.setdefault("host", self.pg.host if self.pg else "127.0.0.1")
        spec.setdefault("port", self.pg.port if self.pg else 5432)
        return "%s = %s" % (name, " ".join("%s=%s" % kv for kv in spec.items()))

    def write_config(self, port):
        self.port = port
        s = {
            "listen_addr": "127.0.0.1",
            "listen_port": port,
            "unix_socket_dir": self.dir,
            "auth_type": "trust",
            "pool_mode": "transaction",
            "workers": int(os.environ.get("SHOAL_TEST_WORKERS", "1")),
            "server_connect_timeout": 3,
            "server_login_retry": 1,
            "query_wait_timeout": 5,
            "client_login_timeout": 5,
            "shutdown_timeout": 3,
        }
        if IS_ROOT:  # CI runs as root; Shoal refuses root unless allowed (issue 16)
            s["allow_root"] = 1
        if self.userlist is not None:
            path = os.path.join(self.dir, "userlist.txt")
            with open(path, "w") as f:
                for u, secret in self.userlist.items():
                    f.write('"%s" "%s"\n' % (u, secret))
            s["auth_file"] = path
            s["auth_type"] = "md5"
        s.update(self.settings)
        lines = ["[databases]"]
        lines += [self._db_line(n, spec) for n, spec in self.databases.items()]
        lines += ["", "[users]"]
        for u, spec in self.users.items():
            if isinstance(spec, str):
                lines.append("%s = %s" % (u, spec))
            else:
                lines.append("%s = %s" % (u, " ".join("%s=%s" % kv for kv in spec.items())))
        lines += ["", "[pgbouncer]"]
        lines += ["%s = %s" % kv for kv in s.items()]
        if self.extra_ini:
            lines.append(self.extra_ini)
        with open(self.ini, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def unix_socket(self):
        return os.path.join(self.dir, ".s.PGSQL.%d" % self.port)

    # -- process -------------------------------------------------------------------------
    def start(self):
        for attempt in range(3):
            self.write_config(self.settings.get("listen_port") or free_port())
            env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
            self._log = open(self.logfile, "ab")
            args = [SHOAL_BIN] + (["-v"] if self.verbose else []) + [self.ini]
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=self.preexec_fn)
            self.pid = self.proc.pid
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                rc = self.proc.poll()
                if rc is not None:
                    break
                try:
                    socket.create_connection((self.host, self.port), timeout=0.5).close()
                    # The Unix socket is bound after the TCP one: wait for it as well.
                    sockdir = self.settings.get("unix_socket_dir", self.dir)
                    if not sockdir or os.path.exists(
                            os.path.join(sockdir, ".s.PGSQL.%d" % self.port)):
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            rc = self.proc.poll()
            if rc is None:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("shoal did not accept on port %d within 10s\n%s"
                            % (self.port, self.log_tail()))
            self.returncode = rc
            if "in use" in self.log() and "listen_port" not in self.settings:
                continue  # lost a race for the port; try another
            pytest.fail("shoal exited with %d at start\n%s" % (rc, self.log_tail()))
        pytest.fail("shoal could not bind a port\n%s" % self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, sig=signal.SIGINT, timeout=15):
        """Send sig, wait for exit, return the exit code (kill -9 after timeout)."""
        self.stopped_by_test = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "hung (killed after %ss)" % timeout
                return self.returncode
        self.returncode = self.proc.returncode
        return self.returncode

    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def sanitizer_report(self):
        text = self.log()
        for p in SANITIZER_PATTERNS:
            i = text.find(p)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    # -- clients -------------------------------------------------------------------------
    def dsn(self, dbname, user, password=None, host=None, **kw):
        parts = {"host": host or self.host, "port": self.port, "dbname": dbname, "user": user,
                 "connect_timeout": 5}
        if password is not None:
            parts["password"] = password
        parts.update(kw)
        return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})

    def connect(self, dbname, user, password=None, autocommit=True, host=None,
                prepare_threshold=None, **kw):
        conn = psycopg.connect(self.dsn(dbname, user, password, host=host, **kw),
                               autocommit=autocommit, prepare_threshold=prepare_threshold)
        self.conns.append(conn)
        return conn

    def close_clients(self):
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass


@pytest.fixture
def shoal(pg, request):
    instances = []
    request.node._shoal_instances = instances

    def make(databases=None, users=None, settings=None, userlist=None, verbose=True,
             extra_ini=None, pg_cluster=None, preexec_fn=None):
        inst = ShoalProcess(pg_cluster or pg, databases, users, settings, userlist, verbose,
                            extra_ini, preexec_fn)
        instances.append(inst)
        return inst.start()

    yield make

    problems = []
    for inst in instances:
        if inst.proc is None:
            continue
        inst.close_clients()
        if not inst.stopped_by_test:
            rc = inst.proc.poll()
            if rc is not None:
                problems.append("shoal (port %d) exited on its own during the test with %r"
                                % (inst.port, rc))
            else:
                rc = inst.stop(signal.SIGINT)
                if rc != 0:
                    problems.append("shoal (port %d) exit code after SIGINT: %r"
                                    % (inst.port, rc))
        elif isinstance(inst.returncode, int) and inst.returncode < 0:
            problems.append("shoal (port %d) died by signal %d" % (inst.port, -inst.returncode))
        if inst._log:
            inst._log.close()
        report = inst.sanitizer_report()
        if report:
            problems.append("sanitizer report in shoal (port %d) log:\n%s" % (inst.port, report))
    failed = any(getattr(request.node, "rep_" + ph, None) is not None
                 and getattr(request.node, "rep_" + ph).failed for ph in ("setup", "call"))
    for inst in instances:
        if not problems and not failed:
            shutil.rmtree(inst.dir, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------
# hooks: attach logs to failures, per-test time limit


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for inst in getattr(item, "_shoal_instances", []):
            rep.sections.append(("shoal log tail (port %s)" % getattr(inst, "port", "?"),
                                 inst.log_tail(80)))


class TimeLimitExceeded(Exception):
    pass


@pytest.fixture(autouse=True)
def _time_limit():
    """Fail (rather than hang) a test that runs longer than TEST_TIMEOUT seconds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeLimitExceeded("test exceeded %ds" % TEST_TIMEOUT)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


