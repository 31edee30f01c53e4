"""The first five minutes: DATABASE_URL alone, SHOAL_DATABASES, ${VAR} in the file, strict
configuration with "did you mean", --check with no file, and PgBouncer's command-line flags."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import psycopg
import pytest

from conftest import IS_ROOT, SHOAL_BIN
from helpers import free_port


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SHOAL_") and k not in ("DATABASE_URL", "PGHOST", "PGPORT")}
    if IS_ROOT:
        env["SHOAL_ALLOW_ROOT"] = "1"  # Shoal refuses root unless allowed (issue 16)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Daemon:
    """A shoal started here with a given environment and arguments, no fixture config."""

    def __init__(self, args, env, port, command=None, addr="127.0.0.1", preexec_fn=None):
        """command: the whole command line instead of shoal and args (a shell wrapper)."""
        self.dir = tempfile.mkdtemp(prefix="shoal-first-")
        self.port, self.addr = port, addr
        self.out = open(os.path.join(self.dir, "stdio.log"), "wb")
        self.proc = subprocess.Popen(command or [SHOAL_BIN, *args], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, preexec_fn=preexec_fn)

    def wait_listening(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("shoal exited with %d:\n%s" % (self.proc.returncode, self.output()))
            try:
                socket.create_connection((self.addr, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        pytest.fail("shoal did not listen on %d:\n%s" % (self.port, self.output()))

    def output(self):
        self.out.flush()
        with open(os.path.join(self.dir, "stdio.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def connect(self, dbname, user="whoever"):
        return psycopg.connect(host=self.addr, port=self.port, dbname=dbname, user=user,
                               connect_timeout=5, autocommit=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return self.proc.returncode


@pytest.fixture
def daemons():
    started = []

    def make(args, env, port, **kw):
        d = Daemon(args, env, port, **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        rc = d.stop()
        assert rc == 0, "shoal exit code %r\n%s" % (rc, d.output())
        shutil.rmtree(d.dir, ignore_errors=True)


def check(*args, env=None):
    return subprocess.run([SHOAL_BIN, "--check", *args], capture_output=True, text=True,
                          timeout=20, env=env or clean_env())


def write(tmp_path, text, name="shoal.ini"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ---- DATABASE_URL and SHOAL_DATABASES, no file ---------------------------------------------


def test_database_url_alone_serves_its_database_and_the_others_on_that_server(
        daemons, pg, role_db, tmp_path):
    role, db = role_db
    port = free_port()
    url = "postgres://%s:unused@%s:%d/postgres?sslmode=prefer&connect_timeout=5" % (
        role, pg.host, pg.port)
    d = daemons([], clean_env(DATABASE_URL=url, SHOAL_LISTEN_PORT=port,
                              SHOAL_UNIX_SOCKET_DIR=str(tmp_path)), port).wait_listening()
    with d.connect("postgres") as c:  # the URL's user logs in whoever the client says it is
        assert c.execute("SELECT current_user, current_database()").fetchone() == (
            role, "postgres")
    with d.connect(db) as c:  # "*": the same server, the database the client asks for
        assert c.execute("SELECT current_database()").fetchone() == (db,)
    if shutil.which("psql"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "app", "-Atc",
                            "SELECT 40 + 2", "postgres"], capture_output=True, text=True,
                           timeout=20, env=clean_env())
        assert r.returncode == 0 and r.stdout.strip() == "42", r.stderr
    assert "connect_timeout=5 is a client option" in d.output()


def test_shoal_databases_names_several_and_nothing_else(daemons, pg, role_db, tmp_path):
    role, db = role_db
    port = free_port()
    dbs = "app=postgres://%s@%s:%d/%s;main = host=%s port=%d dbname=postgres user=%s" % (
        role, pg.host, pg.port, db, pg.host, pg.port, role)
    d = daemons([], clean_env(SHOAL_DATABASES=dbs, SHOAL_LISTEN_PORT=port,
                              SHOAL_UNIX_SOCKET_DIR=str(tmp_path)), port).wait_listening()
    with d.connect("app") as c:
        assert c.execute("SELECT current_database()").fetchone() == (db,)
    with d.connect("main") as c:
        assert c.execute("SELECT current_database()").fetchone() == ("postgres",)
    with pytest.raises(psycopg.OperationalError):  # no silent fallback to a local PostgreSQL
        d.connect("postgres")


def test_check_with_no_file_checks_the_default_and_the_environment():
    r = check()
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout
    assert "pool_mode = transaction" in r.stdout
    r = check(env=clean_env(DATABASE_URL="postgres://u@db.example:5433/app"))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^app = host=db\.example port=5433 dbname=app user=u$", r.stdout, re.M)
    assert re.search(r"^\* = host=db\.example port=5433 user=u$", r.stdout, re.M)
    r = check(env=clean_env(DATABASE_URL="postgres://u@db.example:99999/app"))
    assert r.returncode == 1
    assert "DATABASE_URL" in r.stderr and "configuration OK" not in r.stdout


# ---- strict configuration ----------------------------------------------------------------


TYPO = """[databases]
db = host=127.0.0.1 port=5432
[pgbouncer]
listen_addr = 127.0.0.1
pool_mod = transaction
"""


def test_typo_fails_check_with_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, TYPO)
    r = check(path)
    assert r.returncode == 1
    assert '%s:5: unknown setting "pool_mod" (did you mean "pool_mode"?)' % path in r.stderr
    assert "configuration OK" not in r.stdout


def test_typo_fails_start_unless_strict_config_is_0(tmp_path, pg):
    path = write(tmp_path, TYPO)
    r = subprocess.run([SHOAL_BIN, path], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 1
    assert 'did you mean "pool_mode"' in r.stderr


def test_lenient_warnings_reach_the_logfile_once_across_reloads(daemons, tmp_path, pg):
    port = free_port()
    log = tmp_path / "shoal.log"
    path = write(tmp_path, TYPO.replace("127.0.0.1 port=5432", "%s port=%d" % (pg.host, pg.port))
                 + "strict_config = 0\npkt_buf = 4096\n"
                 + "listen_port = %d\nunix_socket_dir = %s\nlogfile = %s\n" % (
                     port, tmp_path, log))
    d = daemons([path], clean_env(), port).wait_listening()
    for _ in range(2):
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while log.read_text().count("configuration reloaded") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert text.count("configuration reloaded") == 2, text
    assert text.count('unknown setting "pool_mod"') == 1, text
    assert text.count("pkt_buf") == 1, text
    assert "Shoal sizes its buffers by the data in flight" in text
    assert "not implemented" not in text


def test_broken_section_header_blames_its_own_line(tmp_path):
    path = write(tmp_path, "[databases]\ndb = host=h\n[pgbouncer\npool_mode = transaction\n")
    r = check(path)
    assert r.returncode == 1
    assert '%s:3: malformed section header "[pgbouncer"' % path in r.stderr


# ---- ${VAR} expansion ------------------------------------------------------------------------


def test_var_and_default_expand_in_values(daemons, tmp_path, pg, role):
    port = free_port()
    path = write(tmp_path, """[databases]
db = host=${T_PGHOST:-127.0.0.1} port=${T_PGPORT} dbname=postgres user=${T_ROLE}
[pgbouncer]
listen_port = ${T_PORT:-6432}
unix_socket_dir = ${T_SOCKDIR}
auth_type = ${T_AUTH_TYPE:-trust}
""")
    env = clean_env(T_PGPORT=pg.port, T_ROLE=role, T_PORT=port, T_SOCKDIR=tmp_path)
    d = daemons([path], env, port).wait_listening()
    with d.connect("db") as c:
        assert c.execute("SELECT current_user").fetchone() == (role,)


def test_unset_var_without_default_is_an_error_with_its_line(tmp_path):
    path = write(tmp_path, "[pgbouncer]\nlisten_port = 1\nlogfile = ${T_NOT_SET}/shoal.log\n")
    r = check(path)
    assert r.returncode == 1
    assert "%s:3: logfile: environment variable T_NOT_SET is not set" % path in r.stderr


# ---- command line ----------------------------------------------------------------------------


def test_reboot_is_refused_with_what_to_do_instead():
    for flag in ("-R", "--reboot"):
        r = subprocess.run([SHOAL_BIN, flag], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2
        assert "not supported" in r.stderr and "so_reuseport = 1" in r.stderr
        assert "SIGTERM" in r.stderr


def test_version_short_and_long():
    for flag in ("-V", "--version"):
        r = subprocess.run([SHOAL_BIN, flag], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and r.stdout.startswith("Shoal ")


def test_quiet_keeps_stderr_empty_as_pgbouncers_harness_expects(daemons, tmp_path, pg, role):
    """PgBouncer's test harness starts BOUNCER_EXE --quiet test.ini."""
    port = free_port()
    path = write(tmp_path, "[databases]\ndb = host=%s port=%d dbname=postgres user=%s\n"
                 "[pgbouncer]\nlisten_port = %d\nunix_socket_dir = %s\nauth_type = trust\n"
                 "ignore_startup_parameters = extra_float_digits\n"
                 % (pg.host, pg.port, role, port, tmp_path))
    d = daemons(["--quiet", "-vv", path], clean_env(), port).wait_listening()
    with d.connect("db") as c:
        c.execute("SELECT 1")
    assert d.output() == ""


def test_daemon_forks_writes_pidfile_and_serves(tmp_path, pg, role):
    port = free_port()
    pidfile, log = tmp_path / "shoal.pid", tmp_path / "shoal.log"
    path = write(tmp_path, "[databases]\ndb = host=%s port=%d dbname=postgres user=%s\n"
                 "[pgbouncer]\nlisten_port = %d\nunix_socket_dir = %s\nauth_type = trust\n"
                 "logfile = %s\npidfile = %s\n"
                 % (pg.host, pg.port, role, port, tmp_path, log, pidfile))
    r = subprocess.run([SHOAL_BIN, "-d", path], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 0, r.stderr
    pid = int(pidfile.read_text())  # written before the parent returned
    try:
        with psycopg.connect(host="127.0.0.1", port=port, dbname="db", user="x",
                             connect_timeout=5, autocommit=True) as c:
            assert c.execute("SELECT current_user").fetchone() == (role,)
        assert os.getsid(pid) == pid  # its own session, detached from ours
    finally:
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
            time.sleep(0.05)
    assert not os.path.exists("/proc/%d" % pid)
    assert "Shoal stopped" in log.read_text()


def test_daemon_without_logfile_is_refused(tmp_path):
    path = write(tmp_path, "[databases]\n[pgbouncer]\nlisten_port = %d\n" % free_port())
    r = subprocess.run([SHOAL_BIN, "-d", path], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 1
    assert "-d needs logfile and pidfile" in r.stderr


def test_daemon_that_cannot_bind_makes_the_parent_fail(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    path = write(tmp_path, "[databases]\n[pgbouncer]\nlisten_port = %d\nunix_socket_dir =\n"
                 "logfile = %s/shoal.log\npidfile = %s/shoal.pid\n" % (port, tmp_path, tmp_path))
    try:
        r = subprocess.run([SHOAL_BIN, "-d", path], capture_output=True, text=True,
                           timeout=20, env=clean_env())
    finally:
        busy.close()
    assert r.returncode == 1
    assert "did not start" in r.stderr


def test_user_flag(daemons, tmp_path, pg, role):
    port = free_port()
    os.chmod(tmp_path, 0o777)
    path = write(tmp_path, "[databases]\ndb = host=%s port=%d dbname=postgres user=%s\n"
                 "[pgbouncer]\nlisten_port = %d\nunix_socket_dir = %s\nauth_type = trust\n"
                 % (pg.host, pg.port, role, port, tmp_path))
    if not IS_ROOT:
        r = subprocess.run([SHOAL_BIN, "-u", "postgres", path], capture_output=True,
                           text=True, timeout=20, env=clean_env())
        assert r.returncode == 1 and "only root" in r.stderr
        return
    d = daemons(["-u", "postgres", path], clean_env(), port).wait_listening()
    with d.connect("db") as c:
        c.execute("SELECT 1")
    import pwd
    uid = pwd.getpwnam("postgres").pw_uid
    status = open("/proc/%d/status" % d.proc.pid).read()
    assert re.search(r"^Uid:\s+%d\s+%d" % (uid, uid), status, re.M), status
    r = subprocess.run([SHOAL_BIN, "-u", "no_such_user_x", path], capture_output=True,
                       text=True, timeout=20, env=clean_env())
    assert r.returncode == 1 and "no such user" in r.stderr


def test_reload_with_a_typo_keeps_the_running_configuration(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "user": role}})
    with open(s.ini, "a") as f:
        f.write("max_client_con = 5\n")
    s.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload failed" not in s.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 'unknown setting "max_client_con" (did you mean "max_client_conn"?)' in s.log()
    assert "keeping the running configuration" in s.log()
    s.connect("db", role).execute("SELECT 1")


# ---- secrets from files: VAR_FILE ----------------------------------------------------------


def test_database_url_file_and_setting_file_keep_secrets_out_of_the_environment(
        daemons, pg, role_db, tmp_path):
    """DATABASE_URL_FILE and SHOAL_<NAME>_FILE (Docker and Kubernetes secrets) work like the
    variables; the secret is in no environment variable of the process."""
    role, db = role_db
    port, http = free_port(), free_port()
    url_file = tmp_path / "database_url"
    url_file.write_text("postgres://%s:unused@%s:%d/%s\n" % (role, pg.host, pg.port, db))
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    d = daemons([], clean_env(DATABASE_URL_FILE=url_file, SHOAL_LISTEN_PORT=port,
                              SHOAL_UNIX_SOCKET_DIR=tmp_path, SHOAL_HTTP_PORT=http,
                              SHOAL_HTTP_TOKEN_FILE=token_file), port).wait_listening()
    with d.connect(db) as c:
        assert c.execute("SELECT current_database()").fetchone() == (db,)
    with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
        environ = f.read()
    assert b"s3cret-token" not in environ and b"unused@" not in environ
    r = check(env=clean_env(SHOAL_HTTP_TOKEN_FILE=token_file))
    assert r.returncode == 0 and "http_token = s3cret-token" in r.stdout, r.stdout + r.stderr
    assert "names no setting" not in r.stderr, r.stderr


def test_unreadable_file_variant_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nope"
    r = check(env=clean_env(SHOAL_DATABASES_FILE=missing))
    assert r.returncode == 1 and "configuration OK" not in r.stdout
    assert "SHOAL_DATABASES_FILE: cannot read %s" % missing in r.stderr, r.stderr
    r = check(env=clean_env(SHOAL_HTTP_TOKEN_FILE=missing))
    assert r.returncode == 1 and "SHOAL_HTTP_TOKEN_FILE: cannot read" in r.stderr, r.stderr
    r = check(env=clean_env(SHOAL_POOL_MODE="transaction", SHOAL_POOL_MODE_FILE=missing))
    assert r.returncode == 0, r.stderr  # the variable itself wins; the file is not read


# ---- the walkthrough: fresh clone, run command, the printed commands work -------------------

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def banner_lines(proc, deadline):
    """run.sh's output up to its banner's last line."""
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Stop with Ctrl-C."):
            return lines
    pytest.fail("no banner from scripts/run.sh:\n" + "\n".join(lines))


def printed(lines, label):
    for line in lines:
        if line.strip().startswith(label + ":"):
            return line.split(":", 1)[1].strip()
    pytest.fail("%s: not in the banner:\n%s" % (label, "\n".join(lines)))


@pytest.mark.skipif(not shutil.which("git") or not os.path.isdir(os.path.join(REPO_DIR, ".git"))
                    and not os.path.isfile(os.path.join(REPO_DIR, ".git")),
                    reason="not a git checkout")
@pytest.mark.skipif(not shutil.which("psql"), reason="no psql")
def test_walkthrough_from_a_fresh_clone(tmp_path):
    """README's first command from a fresh clone (the binary under test stands in for the
    build): the banner's psql, admin-console and dashboard commands all work as printed."""
    clone = tmp_path / "shoal"
    subprocess.run(["git", "clone", "-q", REPO_DIR, str(clone)], check=True, timeout=120)
    port, pg_port, http = free_port(), free_port(), free_port()
    env = clean_env(SHOAL_BIN=SHOAL_BIN)
    env.pop("PGUSER", None)
    env.pop("PGPASSWORD", None)
    proc = subprocess.Popen(["bash", "scripts/run.sh", "--port", str(port), "--pg-port",
                             str(pg_port), "--http-port", str(http)], cwd=clone, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = banner_lines(proc, time.monotonic() + 120)
        assert "Shoal on 127.0.0.1:%d" % port in lines[-6], lines
        connect, admin = printed(lines, "connect"), printed(lines, "admin")
        url = printed(lines, "dashboard")
        assert url == "http://127.0.0.1:%d/" % http
        psql = connect.split() + ["-Atc", "SELECT 40 + 2"]

        def query():
            r = subprocess.run(psql, capture_output=True, text=True, timeout=20, env=env)
            return r if r.returncode == 0 else None
        r = None
        deadline = time.monotonic() + 20
        while r is None and time.monotonic() < deadline:
            r = query()
            time.sleep(0.1)
        assert r and r.stdout.strip() == "42", psql
        console = admin.split("(")[0].split() + ["-Atc", "SHOW POOLS"]
        r = subprocess.run(console, capture_output=True, text=True, timeout=20, env=env)
        assert r.returncode == 0 and "postgres" in r.stdout, r.stdout + r.stderr
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and b"Shoal pools" in page.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # shoal stops, run.sh's trap stops the cluster
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out = proc.stdout.read()
        proc.stdout.close()
    assert proc.returncode in (0, 130, -signal.SIGINT), out
