"""Packaging: systemd's readiness protocol (Type=notify-reload), the install layout, the man
pages, the systemd unit, the container image definition and the Kubernetes manifests."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import SHOAL_BIN
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


# ---- meson install: the layout, the man pages, the unit, pkg-config ------------------------

BUILD_DIR = os.path.dirname(os.path.abspath(SHOAL_BIN))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`meson install --destdir` of the build SHOAL_BIN comes from: {relative path: full path}."""
    if not os.path.exists(os.path.join(BUILD_DIR, "meson-private")):
        pytest.skip("%s is not a meson build directory" % BUILD_DIR)
    dest = str(tmp_path_factory.mktemp("destdir"))
    r = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--no-rebuild", "--quiet",
                        "--destdir", dest], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = {}
    for root, _, names in os.walk(dest):
        for n in names:
            full = os.path.join(root, n)
            files[os.path.relpath(full, dest)] = full
    return dest, files


def find(files, suffix):
    hits = [full for rel, full in files.items() if rel.endswith(suffix)]
    assert len(hits) == 1, "%s: %r" % (suffix, sorted(files))
    return hits[0]


def test_install_lays_out_binary_library_headers_pkgconfig_man_unit_and_sample(installed):
    _, files = installed
    for suffix in ("bin/shoal", "include/shoal/pool.h", "pkgconfig/libshoal.pc", "libshoal.a",
                   "man/man1/shoal.1", "man/man5/shoal.ini.5", "man/man3/libshoal.3",
                   "systemd/system/shoal.service", "doc/shoal/examples/shoal.ini"):
        find(files, suffix)
    assert any(re.search(r"lib/.*libshoal\.so\.[0-9.]+$", rel) for rel in files), sorted(files)
    assert os.access(find(files, "bin/shoal"), os.X_OK)


@pytest.mark.skipif(not shutil.which("man"), reason="man is not installed")
@pytest.mark.parametrize("page,words", [
    ("man1/shoal.1", ["SYNOPSIS", "--check", "SIGHUP", "NOTIFY_SOCKET"]),
    ("man5/shoal.ini.5", ["SETTINGS", "listen_port", "pool_mode", "strict_config"]),
    ("man3/libshoal.3", ["shoal_pool_with_retry", "pkg-config"]),
])
def test_man_pages_render(installed, page, words):
    _, files = installed
    r = subprocess.run(["man", "-l", find(files, "man/" + page)], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, MANWIDTH="100",
                                                       MAN_KEEP_FORMATTING="0", PAGER="cat"))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr.lower(), r.stderr
    text = re.sub(".\x08", "", r.stdout)  # overstrike bold and underline
    for w in words:
        assert w in text, "%s: %r missing" % (page, w)


def test_unit_is_notify_with_reload_user_hardening_and_nofile(installed):
    _, files = installed
    text = open(find(files, "systemd/system/shoal.service")).read()
    keys = dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))
    assert keys["Type"] in ("notify-reload", "notify")
    if keys["Type"] == "notify":  # systemd < 253: the reload is a SIGHUP all the same
        assert keys["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert keys["User"] == "shoal" and int(keys["LimitNOFILE"]) >= 4096
    for k in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "RestrictAddressFamilies",
              "SystemCallFilter", "CapabilityBoundingSet"):
        assert k in keys, k
    assert keys["ExecStart"].split()[0].endswith("/bin/shoal")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_unit_passes_systemd_analyze_verify(installed, tmp_path):
    dest, files = installed
    text = open(find(files, "systemd/system/shoal.service")).read()
    exe = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    unit = tmp_path / "shoal.service"  # the binary where it was installed, not yet in /usr
    unit.write_text(text.replace("ExecStart=" + exe, "ExecStart=" + dest + exe))
    man = os.path.dirname(os.path.dirname(find(files, "man/man1/shoal.1")))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, MANPATH=man))
    assert r.returncode == 0 and "shoal.service" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_sample_configuration_checks(installed, tmp_path):
    _, files = installed
    users = tmp_path / "userlist.txt"
    users.write_text('"shoal" "secret"\n')
    r = subprocess.run([SHOAL_BIN, "--check", find(files, "doc/shoal/examples/shoal.ini")],
                       capture_output=True, text=True, timeout=20,
                       env=clean_env(SHOAL_AUTH_FILE=users))
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stdout + r.stderr


@pytest.mark.skipif(not shutil.which("pkg-config") or not shutil.which("cc"),
                    reason="no pkg-config or cc")
@pytest.mark.parametrize("where", ["build tree", "installed"])
def test_pkg_config_builds_the_example(installed, tmp_path, where):
    dest, files = installed
    if where == "build tree":
        pcdir = os.path.join(BUILD_DIR, "meson-uninstalled")
    else:  # the installed .pc, its prefix moved to where --destdir put it
        pc = open(find(files, "pkgconfig/libshoal.pc")).read()
        prefix = re.search(r"^prefix=(.*)$", pc, re.M).group(1)
        pcdir = str(tmp_path)
        (tmp_path / "libshoal.pc").write_text(
            pc.replace("prefix=" + prefix, "prefix=" + dest + prefix, 1))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libshoal"], env=env,
                           capture_output=True, text=True, timeout=20)
    assert flags.returncode == 0, flags.stderr
    out = str(tmp_path / "pool_example")
    r = subprocess.run(["cc", "-o", out, os.path.join(REPO, "examples", "pool_example.c"),
                        *flags.stdout.split()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert os.access(out, os.X_OK)
