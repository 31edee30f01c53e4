"""Packaging: systemd's readiness protocol (Type=notify-reload), the install layout, the man
pages, the systemd unit, the container image definition and the Kubernetes manifests."""
import os
import signal
import socket
import time

from helpers import free_port
from test_first_run import clean_env, daemons  # noqa: F401 (fixture)


def recv_state(sock, want, timeout=10):
    """The next datagram holding `want` (a NAME=value line); earlier ones are returned too."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        seen.append(msg)
        if want in msg.splitlines():
            return msg, seen
    raise AssertionError("no %r from shoal; got %r" % (want, seen))


def test_sd_notify_ready_reloading_and_stopping(daemons, pg, tmp_path):  # noqa: F811
    """As systemd sees a Type=notify-reload service: READY=1 once listening, RELOADING=1 with
    MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on SIGTERM."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        port = free_port()
        url = "postgres://nobody@%s:%d/postgres" % (pg.host, pg.port)
        d = daemons([], clean_env(DATABASE_URL=url, SHOAL_LISTEN_PORT=port,
                                  SHOAL_UNIX_SOCKET_DIR=str(tmp_path), NOTIFY_SOCKET=path), port)
        msg, _ = recv_state(sock, "READY=1")
        assert "MAINPID=%d" % d.proc.pid in msg.splitlines()
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # listening by then
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        d.proc.send_signal(signal.SIGHUP)
        msg, _ = recv_state(sock, "RELOADING=1")
        usec = [int(line.split("=", 1)[1]) for line in msg.splitlines()
                if line.startswith("MONOTONIC_USEC=")]
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert usec and before <= usec[0] <= after, (msg, before, after)
        msg, _ = recv_state(sock, "READY=1")
        assert "STATUS=configuration reloaded" in msg.splitlines()
        d.proc.send_signal(signal.SIGTERM)
        recv_state(sock, "STOPPING=1")
        d.proc.wait(15)
    finally:
        sock.close()
        os.unlink(path)
