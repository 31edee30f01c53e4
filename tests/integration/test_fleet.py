"""Fleets (issue 20): protocol 3.2 long cancel keys, and cancel requests routed between Shoal
instances by the peer id each key carries ([peers] and peer_id, PgBouncer's format)."""
import os
import signal
import struct
import threading
import time
import urllib.request

import pytest

from admin_helpers import admin, pool_row, show
from helpers import free_port, wait_until
from wire import Wire, parse_fields, query_message

from fleet_helpers import PROTOCOL_3_2, PROTOCOL_3_3
from fleet_helpers import cancel_at as _cancel_at
from fleet_helpers import private_hosts_file as _private_hosts_file
from fleet_helpers import startup as _startup


def _cancel(port, pid, key, timeout=5):
    return _cancel_at("127.0.0.1", port, pid, key, timeout)


def _sleep_until_cancelled(w, pg, role, cancel, seconds=10):
    """Run pg_sleep on w, call cancel() once it runs; return (error fields, seconds taken)."""
    w.send(query_message("SELECT pg_sleep(%d)" % seconds))
    wait_until(lambda: pg.backends(usename=role, extra="state = 'active'"), timeout=3,
               what="query running")
    t0 = time.monotonic()
    cancel()
    w.sock.settimeout(seconds + 2)
    error = None
    while True:
        mtype, body = w.read_msg()
        if mtype == b"E":
            error = parse_fields(body)
        elif mtype == b"Z":
            return error, time.monotonic() - t0


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_protocol_3_2_client_gets_a_long_key_that_cancels(shoal, pg, role, mode):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": mode})
    w = Wire(s.host, s.port)
    seen, (pid, key) = _startup(w, role, "db", PROTOCOL_3_2)
    assert b"v" not in [t for t, _ in seen], "3.2 is spoken: no NegotiateProtocolVersion"
    assert len(key) == 32 and pid > 0
    error, took = _sleep_until_cancelled(w, pg, role, lambda: _cancel(s.port, pid, key))
    assert error is not None and error.get("C") == "57014", error
    assert took < 3
    w.close()


def test_protocol_3_2_key_cut_to_4_bytes_cancels_nothing(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "transaction"})
    w = Wire(s.host, s.port)
    _, (pid, key) = _startup(w, role, "db", PROTOCOL_3_2)
    _cancel(s.port, pid, key[:4])
    wrong = bytes([key[0] ^ 1]) + key[1:]
    _cancel(s.port, pid, wrong)
    w.send(query_message("SELECT 1"))
    mtype, _ = w.read_msg()
    assert mtype == b"T"
    assert s.log().count("unknown key or idle client ignored") == 2
    w.close()


def test_protocol_3_3_gets_negotiate_protocol_version_offering_3_2(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    w = Wire(s.host, s.port)
    seen, (pid, key) = _startup(w, role, "db", PROTOCOL_3_3)
    assert seen[0][0] == b"v", seen[0]
    version, nopts = struct.unpack("!ii", seen[0][1][:8])
    assert version == PROTOCOL_3_2 and nopts == 0
    assert len(key) == 32  # then spoken as 3.2
    w.close()


def test_protocol_3_0_keeps_4_byte_keys(shoal, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    w = Wire(s.host, s.port)
    seen, (pid, key) = _startup(w, role, "db", 3 << 16)
    assert b"v" not in [t for t, _ in seen]
    assert len(key) == 4
    w.close()


def _fleet(shoal, n=2, peer_host="127.0.0.1", **settings):
    """n instances with peer_id 1..n on their own ports, each with the same [peers] list."""
    ports = [free_port() for _ in range(n)]
    peers = "\n".join("%d = host=%s port=%d" % (i + 1, peer_host, p)
                       for i, p in enumerate(ports))
    out = []
    for i, port in enumerate(ports):
        st = {"pool_mode": "transaction", "listen_port": port, "peer_id": i + 1}
        st.update(settings)
        out.append(shoal(databases={"db": {"dbname": "postgres"}}, settings=st,
                         extra_ini="[peers]\n" + peers))
    return out


@pytest.mark.parametrize("mode", ["session", "transaction"])
@pytest.mark.parametrize("protocol", [3 << 16, PROTOCOL_3_2], ids=["3.0", "3.2"])
def test_cancel_sent_to_another_instance_is_forwarded_to_the_issuer(shoal, pg, role, protocol,
                                                                    mode):
    a, b = _fleet(shoal, pool_mode=mode)
    w = Wire(a.host, a.port)
    _, (pid, key) = _startup(w, role, "db", protocol)
    if protocol == 3 << 16:  # PgBouncer's layout: peer id in the pid's 2nd and 3rd bytes
        assert (pid >> 16) & 0xff == 1 and (pid >> 8) & 0xff == 0
        assert key[3] & 3 == 3
    else:
        assert key[28:] == b"S\x00\x01\x03"
    error, took = _sleep_until_cancelled(w, pg, role, lambda: _cancel(b.port, pid, key))
    assert error is not None and error.get("C") == "57014", error
    assert took < 2.5
    assert "forwarded to peer 1" in b.log()
    assert "forwarded to 127.0.0.1:%d" % pg.port in a.log()
    w.send(query_message("SELECT 1"))  # the client goes on
    assert w.read_msg()[0] == b"T"
    w.close()


def test_peer_named_by_host_name_gets_the_very_first_cancel(shoal, pg, role):
    # The name is resolved at start (as [databases] hosts are): workers never wait for DNS.
    a, b = _fleet(shoal, peer_host="localhost")
    w = Wire(a.host, a.port)
    _, (pid, key) = _startup(w, role, "db", 3 << 16)
    error, took = _sleep_until_cancelled(w, pg, role, lambda: _cancel(b.port, pid, key))
    assert error is not None and error.get("C") == "57014", error
    assert "forwarded to peer 1 (localhost:%d)" % a.port in b.log()
    w.close()


def test_cancel_for_unknown_peer_is_ignored_with_one_line(shoal, pg, role):
    a, b = _fleet(shoal)
    w = Wire(a.host, a.port)
    _, (pid, key) = _startup(w, role, "db", 3 << 16)
    other = (pid & ~0x00ffff00) | (7 << 16)  # peer 7: not in [peers]
    t0 = time.monotonic()
    _cancel(b.port, other, key)
    assert time.monotonic() - t0 < 2
    assert b.log().count("unknown peer id 7 ignored") == 1
    assert "unknown peer id" not in a.log()
    w.send(query_message("SELECT 1"))  # nothing was cancelled
    assert w.read_msg()[0] == b"T"
    w.close()


def test_three_instances_each_route_to_the_issuer(shoal, pg, role):
    fleet = _fleet(shoal, n=3)
    for i, issuer in enumerate(fleet):
        w = Wire(issuer.host, issuer.port)
        _, (pid, key) = _startup(w, role, "db", PROTOCOL_3_2 if i % 2 else 3 << 16)
        via = fleet[(i + 1) % 3]
        error, took = _sleep_until_cancelled(w, pg, role, lambda: _cancel(via.port, pid, key))
        assert error is not None and error.get("C") == "57014", (i, error)
        assert took < 2.5
        w.close()


def test_forwarded_cancel_stops_when_its_hops_are_used_up(shoal, pg, role):
    a, b = _fleet(shoal)
    w = Wire(a.host, a.port)
    _, (pid, key) = _startup(w, role, "db", PROTOCOL_3_2)
    spent = key[:31] + b"\x00"
    _cancel(b.port, pid, spent)
    assert b.log().count("not forwarded: no hops left") == 1
    assert "forwarded to peer" not in b.log()
    w.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private /etc/hosts")
@pytest.mark.parametrize("protocol", [3 << 16, PROTOCOL_3_2], ids=["3.0", "3.2"])
def test_peers_discovered_by_dns_name_route_cancels(shoal, pg, role, protocol, tmp_path):
    # Two instances on one port at 127.0.0.1 and 127.0.0.2, no [peers]: both find each other
    # through a name resolving to both addresses (as a Kubernetes headless Service does).
    port = free_port()
    pre = _private_hosts_file(tmp_path / "hosts", "127.0.0.1 shoal-fleet.test\n127.0.0.2 shoal-fleet.test\n")
    insts = []
    for i, addr in enumerate(["127.0.0.1", "127.0.0.2"]):
        st = {"pool_mode": "transaction", "listen_port": port, "listen_addr": addr,
              "peer_id": i + 1, "peer_discovery_dns": "shoal-fleet.test"}
        insts.append(shoal(databases={"db": {"dbname": "postgres"}}, settings=st,
                           preexec_fn=pre))
    a, b = insts
    w = Wire("127.0.0.1", port)
    _, (pid, key) = _startup(w, role, "db", protocol)
    error, took = _sleep_until_cancelled(
        w, pg, role, lambda: _cancel_at("127.0.0.2", port, pid, key))
    assert error is not None and error.get("C") == "57014", error
    assert took < 2.5
    assert "for peer 1 sent to the 2 instance(s) of shoal-fleet.test" in b.log()
    # b also sent it to itself: dropped there, not forwarded again
    assert b.log().count("not forwarded: no hops left") == 1
    assert "forwarded to 127.0.0.1:%d" % pg.port in a.log()
    # a key naming no instance (peer 0: a forged one) is not sent around the fleet
    _cancel_at("127.0.0.2", port, 0x41000041, b"\x01\x02\x03\x07")  # 3 hops left
    assert b.log().count("unknown peer id 0 ignored") == 1
    assert b.log().count("sent to the 2 instance(s)") == 1
    w.close()


def test_processes_sharing_a_port_route_cancels_over_unix_sockets(shoal, pg, role, tmp_path):
    # so_reuseport: the kernel hands each connection, cancels included, to either process;
    # [peers] names each process by its own Unix socket directory, as PgBouncer documents.
    port = free_port()
    dirs = [str(tmp_path / ("p%d" % i)) for i in (1, 2)]
    for d in dirs:
        os.mkdir(d)
    peers = "\n".join("%d = host=%s port=%d" % (i + 1, d, port) for i, d in enumerate(dirs))
    insts = [shoal(databases={"db": {"dbname": "postgres"}}, extra_ini="[peers]\n" + peers,
                   settings={"pool_mode": "transaction", "listen_port": port,
                             "so_reuseport": 1, "peer_id": i + 1, "unix_socket_dir": d})
             for i, d in enumerate(dirs)]
    for round_ in range(4):
        w = Wire(unix_path=os.path.join(dirs[round_ % 2], ".s.PGSQL.%d" % port))
        _, (pid, key) = _startup(w, role, "db", PROTOCOL_3_2 if round_ >= 2 else 3 << 16)
        error, took = _sleep_until_cancelled(w, pg, role, lambda: _cancel(port, pid, key))
        assert error is not None and error.get("C") == "57014", (round_, error)
        assert took < 2.5
        w.close()
    forwarded = sum(i.log().count("forwarded to peer") for i in insts)
    print("cancels that landed on the other process: %d of 4" % forwarded)


def test_peers_follow_a_reload(shoal, pg, role):
    a, b = _fleet(shoal)
    text = open(b.ini).read()
    with open(b.ini, "w") as f:  # b forgets peer 1, then learns it again
        f.write(text.replace("1 = host=", "# 1 = host="))
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in b.log(), timeout=5, what="reload")
    w = Wire(a.host, a.port)
    _, (pid, key) = _startup(w, role, "db", 3 << 16)
    _cancel(b.port, pid, key)
    assert b.log().count("unknown peer id 1 ignored") == 1
    with open(b.ini, "w") as f:
        f.write(text)
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: b.log().count("configuration reloaded") == 2, timeout=5, what="reload")
    error, took = _sleep_until_cancelled(w, pg, role, lambda: _cancel(b.port, pid, key))
    assert error is not None and error.get("C") == "57014", error
    w.close()


def test_fleet_over_server_max_connections_is_one_warning_at_start(shoal, pg):
    inst = shoal(databases={"db": {"dbname": "postgres", "pool_size": 40, "reserve_pool_size": 5},
                            "capped": {"dbname": "postgres", "max_db_connections": 10},
                            "forced": {"dbname": "postgres", "user": "postgres",
                                       "pool_size": 4}},
                 settings={"fleet_size": 3, "server_max_connections": 100})
    wait_until(lambda: "fleet of 3" in inst.log(), timeout=5, what="fleet line")
    lines = [l for l in inst.log().splitlines() if "fleet of" in l]
    # 45 + 10 + 4 per instance; "db" has a pool per user (no max_db_connections)
    assert len(lines) == 1 and "WARN" in lines[0].upper(), lines
    print(lines[0])
    assert ("up to 3 x 59 = 177 server connections to %s:%d or more" % (pg.host, pg.port)
            in lines[0]), lines
    assert "max_db_connections to at most 33 per instance" in lines[0], lines


def test_fleet_size_from_peers_within_server_max_connections_is_info(shoal, pg):
    inst = shoal(databases={"db": {"dbname": "postgres", "max_db_connections": 20}},
                 settings={"peer_id": 1, "server_max_connections": 100},
                 extra_ini="[peers]\n1 = host=127.0.0.1 port=1\n2 = host=127.0.0.1 port=2\n")
    wait_until(lambda: "fleet of 2" in inst.log(), timeout=5, what="fleet line")
    line, = [l for l in inst.log().splitlines() if "fleet of" in l]
    assert "WARN" not in line.upper(), line
    assert "up to 2 x 20 = 40 server connections" in line and "within" in line, line
    alone = shoal(databases={"db": {"dbname": "postgres"}})  # fleet of one, nothing to say
    wait_until(lambda: "started" in alone.log(), timeout=5, what="start line")
    assert "fleet of" not in alone.log()


def test_show_peers_lists_the_peers_section(shoal):
    inst = shoal(databases={"db": {"dbname": "postgres"}}, settings={"peer_id": 1},
                 extra_ini="[peers]\n1 = host=127.0.0.1 port=7001\n"
                           "2 = host=/tmp/other port=7002 pool_size=5\n")
    a = admin(inst)
    _, rows = show(a, "PEERS")
    assert rows == [{"peer_id": 1, "host": "127.0.0.1", "port": 7001, "pool_size": 0},
                    {"peer_id": 2, "host": "/tmp/other", "port": 7002, "pool_size": 0}], rows
    _, lists = show(a, "LISTS")
    assert [r["items"] for r in lists if r["list"] == "peers"] == [2], lists


def test_metrics_list_the_peers_and_count_the_cancels_forwarded_to_each(shoal, pg, role):
    ports, http = [free_port(), free_port()], free_port()
    peers = "[peers]\n1 = host=127.0.0.1 port=%d\n2 = host=127.0.0.1 port=%d\n" % tuple(ports)
    a = shoal(databases={"db": {"dbname": "postgres"}}, extra_ini=peers,
              settings={"pool_mode": "transaction", "listen_port": ports[0], "peer_id": 1})
    b = shoal(databases={"db": {"dbname": "postgres"}}, extra_ini=peers,
              settings={"pool_mode": "transaction", "listen_port": ports[1], "peer_id": 2,
                        "http_port": http})
    w = Wire(a.host, a.port)
    _, (pid, key) = _startup(w, role, "db", PROTOCOL_3_2)
    error, _ = _sleep_until_cancelled(w, pg, role, lambda: _cancel(b.port, pid, key))
    assert error is not None and error.get("C") == "57014", error
    w.close()
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=5) as r:
        body = r.read().decode()
    assert 'shoal_peer{peer_id="1",host="127.0.0.1",port="%d"} 1\n' % ports[0] in body
    assert 'shoal_peer_cancels_forwarded_total{peer_id="1"} 1\n' in body
    assert 'shoal_peer_cancels_forwarded_total{peer_id="2"} 0\n' in body


def test_pool_size_scope_fleet_gives_each_instance_its_share(shoal, pg):
    """pool_size_scope = fleet: the file's sizes are the fleet's totals, so with fleet_size = 3
    default_pool_size = 7 opens at most 2 servers here and the third transaction waits."""
    inst = shoal(databases={"db": {"dbname": "postgres"}},
                 settings={"fleet_size": 3, "pool_size_scope": "fleet", "default_pool_size": 7,
                           "max_db_connections": 30, "pool_mode": "transaction"})
    wait_until(lambda: "pool_size_scope = fleet" in inst.log(), timeout=5, what="start line")
    assert "default_pool_size 7 -> 2 per instance" in inst.log(), inst.log()
    a = admin(inst)
    _, dbs = show(a, "DATABASES")
    row, = [r for r in dbs if r["name"] == "db"]
    assert (row["pool_size"], row["max_connections"]) == (2, 10), row
    _, conf = show(a, "CONFIG")
    assert {r["key"]: r["value"] for r in conf}["default_pool_size"] == "7"
    held = [inst.connect("db", "postgres") for _ in range(2)]
    for c in held:
        c.execute("BEGIN")
        c.execute("SELECT 1")
    waiter = inst.connect("db", "postgres")
    done = []
    t = threading.Thread(target=lambda: done.append(waiter.execute("SELECT 2").fetchone()[0]))
    t.start()
    wait_until(lambda: pool_row(a, "db", "postgres")["cl_waiting"] == 1, timeout=5, what="a waiter")
    assert pool_row(a, "db", "postgres")["sv_active"] == 2
    held[0].execute("COMMIT")
    t.join(timeout=5)
    assert done == [2]
    for c in held + [waiter]:
        c.close()
