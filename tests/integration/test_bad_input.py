"""Hostile or broken clients get 08P01 and are closed; the daemon survives and serves others."""
import socket
import struct
import time

import pytest

import wire
from wire import Wire


@pytest.fixture
def trust_shoal(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 2}},
              settings={"pool_mode": "transaction", "client_login_timeout": 1})
    s.role = role
    return s


def assert_still_serves(s):
    assert s.alive(), "shoal died"
    c = s.connect("db", s.role)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    c.close()


def logged_in(s):
    w = Wire(s.host, s.port)
    assert w.startup(s.role, "db") is None
    return w


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x00\x00\x00\x02\x00\x03\x00\x00",            # length shorter than the header itself
    b"\x00\x00\x00\x0c\x00\x03\x00\x00user",        # options not NUL-terminated
], ids=["http", "short-length", "unterminated"])
def test_garbage_startup_gets_08P01_and_close(trust_shoal, garbage):
    w = Wire(trust_shoal.host, trust_shoal.port)
    w.send(garbage)
    fields = w.wait_error(timeout=5)
    assert fields.get("C") == "08P01", fields
    assert w.is_closed(timeout=3)
    w.close()
    assert_still_serves(trust_shoal)


@pytest.mark.parametrize("payload,message", [
    (b"\x01\x00\x00\x00\x08junk", "invalid packet"),   # unknown message type
    (b"Q\x00\x00\x00\x02", "invalid packet"),            # length below four
    (b"Q\x7f\xff\xff\xff", "packet too large"),          # a 2 GB length header
], ids=["unknown-type", "length-below-four", "2gb-length"])
def test_bad_message_after_login_gets_08P01_and_close(trust_shoal, payload, message):
    w = logged_in(trust_shoal)
    w.send(payload)
    fields = w.wait_error(timeout=5)
    assert fields.get("C") == "08P01", fields
    assert fields.get("M", "").startswith(message), fields
    assert w.is_closed(timeout=3)
    w.close()
    assert_still_serves(trust_shoal)


def test_terminate_before_startup_closes_silently_like_postgres(trust_shoal, pg):
    """A driver that connects and ends at once sends Terminate first: no error, just EOF."""
    for host, port in ((pg.host, pg.port), (trust_shoal.host, trust_shoal.port)):
        w = Wire(host, port)
        w.send(b"X\x00\x00\x00\x04")
        assert w.is_closed(timeout=3), "%s:%s answered a Terminate" % (host, port)
        w.close()
    assert_still_serves(trust_shoal)


def test_oversized_startup_packet_rejected(trust_shoal):
    w = Wire(trust_shoal.host, trust_shoal.port)
    w.send(struct.pack("!ii", 0x7FFFFFFF, wire.PROTOCOL_3))
    fields = w.wait_error(timeout=5)
    assert fields.get("C") == "08P01", fields
    w.close()
    assert_still_serves(trust_shoal)


def test_truncated_startup_then_close_does_not_crash(trust_shoal):
    for _ in range(5):
        s = socket.create_connection((trust_shoal.host, trust_shoal.port), timeout=5)
        s.sendall(wire.startup_packet({"user": trust_shoal.role, "database": "db"})[:11])
        s.close()
    time.sleep(0.2)
    assert_still_serves(trust_shoal)


def test_truncated_message_after_login_then_close_does_not_crash(trust_shoal):
    w = logged_in(trust_shoal)
    w.send(b"Q\x00\x00\x01\x00SELECT")
    w.close()
    time.sleep(0.2)
    assert_still_serves(trust_shoal)


def test_silent_client_closed_after_client_login_timeout(trust_shoal):
    s = socket.create_connection((trust_shoal.host, trust_shoal.port), timeout=5)
    t0 = time.monotonic()
    try:
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
    finally:
        s.close()
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 3.5, elapsed
    assert_still_serves(trust_shoal)


def test_startup_without_user_rejected(trust_shoal):
    w = Wire(trust_shoal.host, trust_shoal.port)
    w.send(wire.startup_packet({"database": "db"}))
    fields = w.wait_error(timeout=5)
    assert fields.get("S") == "FATAL", fields
    assert w.is_closed(timeout=3)
    w.close()
    assert_still_serves(trust_shoal)


def test_ssl_and_gssenc_requests_answered_n(trust_shoal):
    w = Wire(trust_shoal.host, trust_shoal.port)
    w.send(struct.pack("!ii", 8, wire.GSSENC_REQUEST))
    assert w.read_byte() == b"N"
    w.send(struct.pack("!ii", 8, wire.SSL_REQUEST))
    assert w.read_byte() == b"N"
    assert w.startup(trust_shoal.role, "db") is None
    rows, err, _ = w.query("SELECT 7")
    assert err is None and rows == [("7",)]
    w.close()
