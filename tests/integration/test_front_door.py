"""The front door (issue 16): listening sockets, the pidfile, and running out of descriptors."""
import os
import re
import resource
import signal
import socket
import subprocess
import tempfile
import time

import psycopg
import pytest

from conftest import SHOAL_BIN
from helpers import free_port, wait_until


def _second_ini(s, **changes):
    """A copy of s's ini with some settings changed and its own Unix socket directory."""
    d = tempfile.mkdtemp(prefix="shoal-second-")
    changes.setdefault("unix_socket_dir", d)
    with open(s.ini) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        if key in changes:
            continue
        out.append(line)
        if line.strip() == "[pgbouncer]":
            out += ["%s = %s" % kv for kv in changes.items()]
    path = os.path.join(d, "second.ini")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def _run_second(ini, timeout=10):
    """Start another shoal on ini; it must exit by itself. Returns (exit code, output)."""
    r = subprocess.run([SHOAL_BIN, ini], capture_output=True, text=True, timeout=timeout,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")})
    return r.returncode, r.stdout + r.stderr


def test_port_in_use_is_a_fatal_start_error(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    rc, out = _run_second(_second_ini(s))
    assert rc != 0, out
    assert "cannot listen on 127.0.0.1:%d" % s.port in out, out
    assert "in use" in out, out
    s.connect("db", role).execute("SELECT 1")  # the first one is untouched


def test_so_reuseport_1_gives_each_worker_its_own_socket(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"so_reuseport": 1, "workers": 2})
    assert "so_reuseport" in s.log()
    for _ in range(4):
        with psycopg.connect(s.dsn("db", role)) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)


def test_workers_share_one_socket_without_so_reuseport(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"so_reuseport": 0, "workers": 3})
    conns = [psycopg.connect(s.dsn("db", role), autocommit=True) for _ in range(12)]
    for c in conns:
        assert c.execute("SELECT 1").fetchone() == (1,)
    for c in conns:
        c.close()
    # One socket per address: no other process (SO_REUSEPORT or not) can bind the port.
    for reuse in (False, True):
        x = socket.socket()
        if reuse:
            x.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with pytest.raises(OSError):
            x.bind(("127.0.0.1", s.port))
        x.close()


def test_pidfile_is_locked_and_a_second_instance_leaves_it_alone(shoal, pg, role):
    d = tempfile.mkdtemp(prefix="shoal-pid-")
    pidfile = os.path.join(d, "shoal.pid")
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pidfile": pidfile})
    with open(pidfile) as f:
        assert f.read().strip() == str(s.pid)
    rc, out = _run_second(_second_ini(s, listen_port=free_port()))
    assert rc != 0, out
    assert "already running (pid %d)" % s.pid in out, out
    with open(pidfile) as f:
        assert f.read().strip() == str(s.pid), "the second instance rewrote the pidfile"
    s.connect("db", role).execute("SELECT 1")
    assert s.stop(signal.SIGINT) == 0
    assert not os.path.exists(pidfile), "pidfile left behind at exit"


def test_stale_pidfile_is_taken_over(shoal, pg):
    d = tempfile.mkdtemp(prefix="shoal-pid-")
    pidfile = os.path.join(d, "shoal.pid")
    with open(pidfile, "w") as f:
        f.write("999999\n")  # a crashed instance's: present but not locked
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pidfile": pidfile})
    with open(pidfile) as f:
        assert f.read().strip() == str(s.pid)


# ---- running out of file descriptors ------------------------------------------------------

NOFILE = 200


def _low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_refuses_without_spinning_and_recovers(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"max_client_conn": 1000, "client_login_timeout": 60,
                        "max_login_clients": 0},
              verbose=False, preexec_fn=_low_nofile)
    log = s.log()
    assert re.search(r"file descriptor limit %d \(hard %d\)" % (NOFILE, NOFILE), log), log
    assert "max_client_conn = 1000 does not fit" in log, log
    with psycopg.connect(s.dsn("db", role)) as c:  # the pool has its server before the flood
        c.execute("SELECT 1")
    held = []
    try:
        for _ in range(NOFILE + 60):  # more than the limit: bounded, loopback only
            held.append(socket.create_connection((s.host, s.port), timeout=5))
        cpu0, t0 = _cpu_seconds(s.pid), time.monotonic()
        time.sleep(2)
        cpu = _cpu_seconds(s.pid) - cpu0
        assert cpu < 0.5 * (time.monotonic() - t0), "shoal burned %.2f s CPU while idle" % cpu
        # A new client is refused at once with an error, never left hanging.
        for sslmode in ("disable", "prefer"):
            t1 = time.monotonic()
            with pytest.raises(psycopg.OperationalError) as e:
                psycopg.connect(s.dsn("db", role, connect_timeout=10, sslmode=sslmode))
            assert time.monotonic() - t1 < 5
            if sslmode == "disable":  # after an SSLRequest libpq hides the server's text
                assert "too many open files" in str(e.value), str(e.value)
        log = s.log()
        # One line per shortage. With several workers a connection can slip in between two
        # refusals (a refused one's descriptor freed), ending a shortage that then begins
        # again a second later: a few lines, never one per failed accept.
        assert log.count("accept failed") <= 3, log.count("accept failed")
        assert len(log) < 100_000, len(log)
    finally:
        for h in held:
            h.close()
    # Descriptors free again: served, and the episode's end is logged once.
    def served():
        try:
            with psycopg.connect(s.dsn("db", role, connect_timeout=3)) as c:
                return c.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False
    wait_until(served, timeout=10, interval=0.3, what="a client served after the shortage")
    wait_until(lambda: "accepting connections again" in s.log(), timeout=5,
               what="the end of the shortage logged")
    log = s.log()
    assert log.count("accept failed") <= 3, log.count("accept failed")
    assert log.count("accept failed") == log.count("accepting connections again")
    assert len(log) < 100_000, len(log)


def test_failed_start_leaves_no_pidfile(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    d = tempfile.mkdtemp(prefix="shoal-pid-")
    pidfile = os.path.join(d, "second.pid")
    rc, out = _run_second(_second_ini(s, pidfile=pidfile))  # its port is taken
    assert rc != 0 and "in use" in out, out
    assert not os.path.exists(pidfile), "a failed start left its pidfile behind"


def _ini_without_allow_root(s, **changes):
    path = _second_ini(s, listen_port=free_port(), **changes)
    with open(path) as f:
        text = f.read().replace("allow_root = 1\n", "")
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal concerns root")
def test_root_without_user_is_refused(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    rc, out = _run_second(_ini_without_allow_root(s))
    assert rc == 1, out
    assert "refusing to run as root" in out and "allow_root = 1" in out, out


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_user_setting_drops_root_after_binding(shoal, pg, role):
    import pwd
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"user": "nobody", "allow_root": 0})
    uid = pwd.getpwnam("nobody").pw_uid

    def status():
        with open("/proc/%d/status" % s.pid) as f:
            return f.read()
    # The switch follows the binding (the fixture returns once the sockets answer).
    wait_until(lambda: re.search(r"^Uid:\s+%d\s+%d\s+%d" % (uid, uid, uid), status(), re.M),
               timeout=10, what="the process running as nobody")
    status = status()
    assert re.search(r"^Groups:\s*$", status, re.M) or "Groups:\t%d" % pwd.getpwnam(
        "nobody").pw_gid in status, status
    assert "running as user nobody" in s.log()
    with psycopg.connect(s.dsn("db", role)) as c:  # bound as root, serving as nobody
        assert c.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.skipif(os.geteuid() == 0, reason="as root any user can be switched to")
def test_user_setting_of_another_user_is_refused_when_not_root(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    rc, out = _run_second(_ini_without_allow_root(s, user="root"))
    assert rc == 1 and "only root can switch" in out, out
