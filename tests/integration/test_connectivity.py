"""Ways in: Unix socket, libpq sslmode handling."""
import os
import stat

import psycopg
import pytest


def test_unix_socket_accepts_clients(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "transaction"})
    assert stat.S_ISSOCK(os.stat(s.unix_socket).st_mode)
    c = s.connect("db", role, host=s.dir)
    assert c.execute("SELECT current_user").fetchone()[0] == role


def test_empty_unix_socket_dir_disables_socket(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"unix_socket_dir": ""})
    assert not os.path.exists(s.unix_socket)
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_sslmode_prefer_falls_back_to_plain_connection(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    c = s.connect("db", role, sslmode="prefer")
    assert c.execute("SELECT 1").fetchone()[0] == 1
    assert c.pgconn.ssl_in_use is False


def test_sslmode_require_fails_cleanly(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    with pytest.raises(psycopg.OperationalError, match="(?i)ssl"):
        psycopg.connect(s.dsn("db", role, sslmode="require"))
    c = s.connect("db", role, sslmode="disable")
    assert c.execute("SELECT 1").fetchone()[0] == 1


def _shoal_socket(pid, match):
    """A duplicate (pidfd_getfd) of the socket of process pid whose (local, peer) addresses
    match(sock) accepts, or None: getsockopt then reads what that process set on it."""
    import ctypes
    import socket
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(438, pidfd, int(name), 0)  # pidfd_getfd
            if fd < 0:
                continue
            sock = socket.socket(fileno=fd)
            try:
                if sock.family == socket.AF_INET and match(sock):
                    return sock
            except OSError:
                pass
            sock.close()
    finally:
        os.close(pidfd)
    return None


def test_tcp_settings_reach_client_and_server_sockets_and_the_backlog(shoal, pg, role):
    """tcp_keepcnt, tcp_keepidle, tcp_keepintvl, tcp_user_timeout, tcp_socket_buffer on the
    sockets Shoal accepts and connects (read back from Shoal's own sockets with getsockopt),
    tcp_defer_accept and listen_backlog on its listening socket (ss shows the backlog of a
    listening socket as Send-Q)."""
    import socket
    import subprocess
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "session", "tcp_keepcnt": 4, "tcp_keepidle": 31,
                        "tcp_keepintvl": 7, "tcp_user_timeout": 12345, "listen_backlog": 77,
                        "tcp_socket_buffer": 65536, "tcp_defer_accept": 1})
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    client_port = c.execute("SELECT inet_client_port()").fetchone()[0]  # Shoal's server side
    mine = c.pgconn.socket
    local_port = socket.socket(fileno=os.dup(mine)).getsockname()[1]
    accepted = _shoal_socket(s.pid, lambda k: k.getpeername()[1] == local_port
                             and k.getsockname()[1] == s.port)
    connected = _shoal_socket(s.pid, lambda k: k.getsockname()[1] == client_port
                              and k.getpeername()[1] == pg.port)
    for k in (accepted, connected):
        assert k is not None
        assert k.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert k.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
        assert k.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 31
        assert k.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 7
        assert k.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 12345
        assert k.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * 65536  # Linux doubles
        assert k.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 65536
        k.close()
    lsock = _shoal_socket(s.pid, lambda k: k.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                          and k.getsockname()[1] == s.port)
    assert lsock is not None
    assert lsock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) > 0
    lsock.close()
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % s.port], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == "LISTEN" and out[2] == "77", out


def test_tcp_settings_changed_by_reload_reach_the_next_accepted_sockets(shoal, role):
    """The accepted sockets take the tcp_* settings from the listening socket (no setsockopt
    per accept): a RELOAD that changes them, or sets them back to the OS defaults (0, keepalive
    off), is what the next accepted socket has."""
    import socket
    from admin_helpers import admin
    from helpers import wait_until
    s = shoal(databases={"db": {"dbname": "postgres"}},
              settings={"pool_mode": "session", "tcp_keepidle": 31, "tcp_keepcnt": 4,
                        "tcp_user_timeout": 12345})

    def accepted_opts():
        c = s.connect("db", role)
        mine = socket.socket(fileno=os.dup(c.pgconn.socket))
        port = mine.getsockname()[1]
        mine.close()
        k = _shoal_socket(s.pid, lambda k: k.getpeername()[1] == port
                          and k.getsockname()[1] == s.port)
        assert k is not None
        got = (k.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
               k.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
               k.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
               k.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
               k.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
        k.close()
        c.close()
        return got

    def listening(level, opt):
        k = _shoal_socket(s.pid, lambda k: k.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                          and k.getsockname()[1] == s.port)
        assert k is not None
        v = k.getsockopt(level, opt)
        k.close()
        return v

    def reload_with(old, new, level, opt, want):
        """RELOAD with old replaced by new, then wait until the listening socket has opt at
        want (the workers set it at their next tick)."""
        with open(s.ini) as f:
            text = f.read()
        assert old in text
        with open(s.ini, "w") as f:
            f.write(text.replace(old, new))
        admin(s).execute("RELOAD")
        wait_until(lambda: listening(level, opt) == want, timeout=5, what=new)

    def sysctl(name):
        with open("/proc/sys/net/ipv4/" + name) as f:
            return int(f.read())

    tcp, sol = socket.IPPROTO_TCP, socket.SOL_SOCKET
    assert accepted_opts() == (1, 31, 4, 12345, True)
    reload_with("tcp_keepidle = 31", "tcp_keepidle = 45", tcp, socket.TCP_KEEPIDLE, 45)
    assert accepted_opts() == (1, 45, 4, 12345, True)
    reload_with("tcp_keepcnt = 4", "tcp_keepcnt = 0", tcp, socket.TCP_KEEPCNT,
                sysctl("tcp_keepalive_probes"))
    reload_with("tcp_user_timeout = 12345", "tcp_user_timeout = 0", tcp,
                socket.TCP_USER_TIMEOUT, 0)
    reload_with("tcp_keepidle = 45", "tcp_keepidle = 0", tcp, socket.TCP_KEEPIDLE,
                sysctl("tcp_keepalive_time"))
    assert accepted_opts() == (1, sysctl("tcp_keepalive_time"), sysctl("tcp_keepalive_probes"),
                               0, True)
    reload_with("[pgbouncer]", "[pgbouncer]\ntcp_keepalive = 0", sol, socket.SO_KEEPALIVE, 0)
    assert accepted_opts()[0] == 0


def test_unix_socket_group_owns_the_socket_file(shoal, pg, role, tmp_path):
    """unix_socket_group: the socket file's group; a group that does not exist stops the start
    with one line naming it."""
    import grp
    import subprocess
    from conftest import SHOAL_BIN
    from helpers import free_port
    other = [g for g in os.getgroups() if g != os.getegid()] or [os.getegid()]
    if os.geteuid() == 0:
        other = [grp.getgrnam("postgres").gr_gid]
    name = grp.getgrgid(other[0]).gr_name
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"unix_socket_group": name})
    assert os.stat(s.unix_socket).st_gid == other[0]
    assert s.connect("db", role, host=s.dir).execute("SELECT 1").fetchone()[0] == 1
    ini = tmp_path / "s.ini"
    ini.write_text("[databases]\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n"
                   "unix_socket_dir = %s\nunix_socket_group = no_such_group_22\nallow_root = 1\n"
                   % (free_port(), tmp_path))
    r = subprocess.run([SHOAL_BIN, str(ini)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and 'unix_socket_group: no group "no_such_group_22"' in r.stderr, \
        r.stderr
