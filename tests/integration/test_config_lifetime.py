"""Issue 16: a console SET changes one key of the configuration in force (an edited, unreloaded
file is not applied), and replaced configurations are freed once no worker uses them."""
import os
import re
import struct
import threading

import psycopg

from admin_helpers import admin, show
from conftest import SHOAL_BIN
from helpers import wait_until
from wire import Wire, md5_password, message, startup_packet


def config_of(a):
    return {r["key"]: r["value"] for r in show(a, "CONFIG")[1]}


def rewrite(s, old, new):
    text = open(s.ini).read()
    assert old in text
    with open(s.ini, "w") as f:
        f.write(text.replace(old, new))


def test_set_does_not_apply_an_edited_unreloaded_file(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"query_wait_timeout": 5})
    a = admin(s)
    rewrite(s, "query_wait_timeout = 5", "query_wait_timeout = 7")  # edited, not reloaded
    a.execute("SET default_pool_size = 7")
    cfg = config_of(a)
    assert cfg["default_pool_size"] == "7"
    assert cfg["query_wait_timeout"] == "5", "SET applied the file's unreloaded edit"
    a.execute("RELOAD")  # the file now, and the SET again on top of it
    cfg = config_of(a)
    assert cfg["query_wait_timeout"] == "7"
    assert cfg["default_pool_size"] == "7"
    assert s.connect("db", role).execute("SELECT 1").fetchone() == (1,)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def sanitized():
    """ASan keeps freed memory in quarantine and TSan shadows it: RSS bounds hold on plain
    builds (as in test_memory_bounds.py)."""
    name = os.path.basename(os.path.dirname(os.path.abspath(SHOAL_BIN)))
    return "asan" in name or "tsan" in name


def freed(s):
    """How many replaced configurations the log says were freed."""
    return sum(int(n) for n in re.findall(r"freed (\d+) old configuration", s.log()))


def console_storm(s, consoles, per_console, command):
    """consoles console connections at once, each running command(i) per_console times: the
    main thread runs the jobs queued meanwhile together, so hundreds take a few seconds."""
    errors = []

    def one(k):
        try:
            with admin(s) as a:
                for i in range(per_console):
                    a.execute(command(k * per_console + i))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=one, args=(k,)) for k in range(consoles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_sets_and_reloads_free_old_configurations(shoal, role):
    """500 SETs and 50 RELOADs with traffic: each configuration carries a 1,000-user auth_file
    (about 0.4 MB with the allocator's overhead), so keeping every one would grow RSS by about
    200 MB. Freed ones are reused by the next, so RSS may grow by a few configurations at most:
    the current one, those replaced but not yet passed by every worker, the TLS contexts' one,
    allocator slack."""
    users = {"u%05d" % i: "md5" + "%032x" % i + "x" * 200 for i in range(1000)}
    users[role] = "pw"
    s = shoal(databases={"db": {"dbname": "postgres", "user": role}}, userlist=users,
              settings={"auth_type": "md5", "workers": 2, "log_connections": 0,
                        "log_disconnections": 0})
    pid = s.proc.pid
    stop = threading.Event()
    errors = []

    def traffic():
        try:
            with psycopg.connect(s.dsn("db", role, password="pw"), autocommit=True) as c:
                for _ in range(100000):
                    if stop.is_set():
                        return
                    c.execute("SELECT 1")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads:
        t.start()
    try:  # warm-up: the allocator reaches its working size
        console_storm(s, 10, 4, lambda i: "SET default_pool_size = %d" % (10 + i % 7))
        base = rss_kb(pid)
        console_storm(s, 10, 50, lambda i: "SET default_pool_size = %d" % (10 + i % 7))
        console_storm(s, 10, 5, lambda i: "RELOAD")
        grown = rss_kb(pid) - base
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    if not sanitized():  # ASan's quarantine keeps freed memory mapped
        assert grown < 16 * 1024, "RSS grew by %d kB over 500 SETs and 50 RELOADs" % grown
    # 590 published after the first: all but the current one and a few not yet passed are freed
    wait_until(lambda: freed(s) >= 585, 10, what="the replaced configurations freed")
    with admin(s) as a:
        assert config_of(a)["default_pool_size"] in {str(10 + i % 7) for i in range(500)}
    assert s.connect("db", role, password="pw").execute("SELECT 1").fetchone() == (1,)


def test_login_across_reloads_keeps_its_database_entry(shoal, role):
    """A client between its startup packet and its password holds its [databases] entry (of the
    configuration then in force) across RELOADs: that configuration stays until its login ends
    (a sanitizer build reports a use after free otherwise)."""
    s = shoal(databases={"db": {"dbname": "postgres", "user": role,
                                "application_name": "kept_entry"}},
              userlist={role: "pw"}, settings={"auth_type": "md5"})
    a = admin(s)
    w = Wire(port=s.port)
    w.send(startup_packet({"user": role, "database": "db"}))
    mtype, body = w.read_msg()
    assert mtype == b"R" and struct.unpack("!i", body[:4])[0] == 5  # md5, with a salt
    salt = body[4:8]
    for _ in range(10):
        a.execute("RELOAD")
    a.execute("SET default_pool_size = 3")
    a.execute("SHOW CONFIG")  # a batch of the console's worker after the SET: still pinned
    w.send(message(b"p", md5_password(role, "pw", salt).encode() + b"\0"))
    while True:
        mtype, body = w.read_msg()
        assert mtype != b"E", body
        if mtype == b"Z":
            break
    w.send(message(b"Q", b"SHOW application_name\0"))
    seen = b""
    while True:
        mtype, body = w.read_msg()
        assert mtype != b"E", body
        seen += body
        if mtype == b"Z":
            break
    assert b"kept_entry" in seen
    w.close()
    wait_until(lambda: "old configuration" in s.log(), 5, what="the pinned ones freed after")
