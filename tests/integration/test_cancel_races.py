"""A cancel never cancels a statement its client did not mean: not another client's (issue 22,
defect 1), not the same client's next one (issue 15, item 6). Raw wire, real PostgreSQL."""
import threading
import time

import pytest

from cancel_helpers import (CancelHoldingProxy, LONG, assert_cancelled, assert_clean,
                            cancel_burst, read_result, start_long, wait_running)
from admin_helpers import admin, pool_row, show
from helpers import wait_until
from wire import Wire, query_message, send_cancel


def _login(s, role):
    w = Wire(s.host, s.port, timeout=10)
    assert w.startup(role, "db") is None
    return w


@pytest.fixture
def proxy_factory(pg):
    made = []

    def make(**kw):
        p = CancelHoldingProxy(pg, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_cancel_answered_late_does_not_reach_the_next_client(shoal, pg, role, proxy_factory):
    """Two cancels for A are forwarded while A's statement runs; the first lands at once, the
    second one second later. The server must not go to B (queued behind A, pool_size 1) before
    the second has been answered, or it cancels B's statement."""
    proxy = proxy_factory(hold=2, delays=(0.0, 1.5))
    s = shoal(databases={"db": {"dbname": "postgres", "host": "127.0.0.1", "port": proxy.port,
                                "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    console = admin(s)
    a, b = _login(s, role), _login(s, role)
    start_long(a)
    b.send(query_message("SELECT pg_sleep(2)"))  # waits for A's server
    burst = threading.Thread(target=cancel_burst, args=(s.host, s.port, a.backend_key, 2),
                             daemon=True)
    burst.start()
    wait_until(lambda: proxy.seen == 2, timeout=5, what="both cancels forwarded")
    assert_cancelled(read_result(a)[1], "A's statement")
    # Until the late answer, the server is held: SHOW POOLS and SHOW SERVERS say so.
    wait_until(lambda: pool_row(console, "db", role)["sv_being_canceled"] == 1 or proxy.answered
               == 2, timeout=5, what="server held for its cancels")
    if proxy.answered < 2:
        states = [r["state"] for r in show(console, "SERVERS")[1] if r["user"] == role]
        assert "being_canceled" in states or proxy.answered == 2, states
    rows, errors = read_result(b, timeout=15)
    assert_clean(errors, "B's statement")
    assert rows == 1
    burst.join(10)
    assert pool_row(console, "db", role)["sv_being_canceled"] == 0
    a.close()
    b.close()


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_cancel_is_answered_before_the_requester_hears_back(shoal, pg, role, proxy_factory,
                                                             mode):
    """The client's cancel connection closes only after PostgreSQL has closed the forwarded
    one: the statement it sends next cannot be the one a late cancel lands on. The proxy delays
    the forwarded cancel past the end of the first statement."""
    proxy = proxy_factory(hold=1, delays=(1.5,))
    s = shoal(databases={"db": {"dbname": "postgres", "host": "127.0.0.1", "port": proxy.port}},
              settings={"pool_mode": mode})
    w = _login(s, role)
    w.send(query_message("DO $$BEGIN RAISE NOTICE 'running'; PERFORM pg_sleep(1); END$$"))
    wait_running(w)
    send_cancel(s.host, s.port, *w.backend_key, timeout=10)
    answered_at_eof = proxy.answered
    w.send(query_message("SELECT pg_sleep(2)"))  # at once, as libpq clients do
    read_result(w)  # the first statement: it may or may not have been cancelled
    rows, errors = read_result(w, timeout=15)
    assert_clean(errors, "the statement sent after the cancel returned")
    assert answered_at_eof == 1, "the requester heard back before PostgreSQL answered"
    w.close()


def test_server_closed_while_its_cancel_is_in_flight(shoal, pg, role, proxy_factory):
    """The client leaves inside its statement while the cancel for it is held by the proxy: the
    server closes at once, and its memory waits for the cancel's answer (ASan: no use after
    free). The pool goes on serving."""
    proxy = proxy_factory(hold=1, delays=(1.0,))
    s = shoal(databases={"db": {"dbname": "postgres", "host": "127.0.0.1", "port": proxy.port,
                                "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    x = _login(s, role)
    start_long(x)
    t = threading.Thread(target=send_cancel, args=(s.host, s.port) + x.backend_key,
                         kwargs={"timeout": 10}, daemon=True)
    t.start()
    wait_until(lambda: proxy.seen == 1, timeout=5, what="cancel forwarded")
    x.close()
    t.join(10)
    assert not t.is_alive() and proxy.answered == 1
    y = _login(s, role)
    rows, error, _ = y.query("SELECT 1")
    assert error is None and len(rows) == 1
    y.close()


def test_hundred_cancels_for_one_client_spare_the_next(shoal, pg, role):
    """Issue 22's scenario as reported: pool_size 1, A sleeps, B waits, 100 cancels for A."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    for _ in range(3):
        a, b = _login(s, role), _login(s, role)
        start_long(a)
        b.send(query_message("SELECT pg_sleep(1)"))
        cancel_burst(s.host, s.port, a.backend_key, 100)
        assert_cancelled(read_result(a)[1], "A's statement")
        assert_clean(read_result(b, timeout=15)[1], "B's statement")
        a.close()
        b.close()


def test_cancel_then_next_statement_at_once(shoal, pg, role):
    """Issue 15 item 6 as reported: a cancel, then at once the next statement, which must run."""
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "session"})
    w = _login(s, role)
    for _ in range(10):
        start_long(w)
        send_cancel(s.host, s.port, *w.backend_key, timeout=10)
        w.send(query_message("SELECT pg_sleep(0.3)"))
        assert_cancelled(read_result(w)[1], "the cancelled statement")
        assert_clean(read_result(w)[1], "the next statement")
    w.close()


# ---- the loop: many cancels of each kind in each pool mode --------------------------------

def _running(s, x, y):
    """Cancel a running statement; the next one, sent once the cancel returned, runs."""
    start_long(x)
    send_cancel(s.host, s.port, *x.backend_key, timeout=10)
    x.send(query_message("SELECT 2"))
    assert_cancelled(read_result(x)[1], "running statement")
    assert_clean(read_result(x)[1], "statement after the cancel")


def _pipelined(s, x, y):
    """A statement queued behind the cancelled one on the same connection is not hit by Shoal.
    PostgreSQL itself may hit it: for one CancelRequest its postmaster signals the backend twice
    (signal_child: the pid, then its process group), and when the backend has taken the first
    SIGINT before the second comes, the second cancels whatever runs next: here the statement
    behind, already in the backend's input. Straight against PostgreSQL 15, no pooler: 10 in
    30,000 (issue 21). Returns True for such a hit (57014, counted by the caller); any other
    error fails."""
    x.send(query_message(LONG) + query_message("SELECT 'behind'"))
    wait_running(x)
    send_cancel(s.host, s.port, *x.backend_key, timeout=10)
    assert_cancelled(read_result(x)[1], "pipelined: first statement")
    errors = read_result(x)[1]
    if [e.get("C") for e in errors] == ["57014"]:
        return True
    assert_clean(errors, "pipelined: statement behind it")
    return False


def _queued(s, x, y):
    """Y waits for X's server (pool_size 1; in session mode Y has a server of its own); a few
    cancels for X, then X's next statement: only X's running one is cancelled."""
    start_long(x)
    y.send(query_message("SELECT pg_sleep(0.01)"))
    cancel_burst(s.host, s.port, x.backend_key, 3)
    x.send(query_message("SELECT 3"))
    assert_cancelled(read_result(x)[1], "queued: X's statement")
    assert_clean(read_result(y)[1], "queued: Y's statement")
    assert_clean(read_result(x)[1], "queued: X's next statement")


@pytest.mark.parametrize("mode,iterations", [("transaction", 70), ("session", 60),
                                             ("statement", 70)])
def test_cancel_loop_never_cancels_an_unmeant_statement(shoal, pg, role, mode, iterations):
    """200 iterations in all: running, pipelined and queued cancels in every pool mode."""
    size = 2 if mode == "session" else 1  # session mode: Y holds a server of its own
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": size}},
              settings={"pool_mode": mode})
    x, y = _login(s, role), _login(s, role)
    kinds = [_running, _pipelined, _queued]
    t0 = time.monotonic()
    hits = 0  # statements behind hit by PostgreSQL's second signal (see _pipelined)
    for i in range(iterations):
        hits += bool(kinds[i % len(kinds)](s, x, y))
    # ~23 pipelined iterations: PostgreSQL's own rate (1 in ~1,000-3,000) makes a third hit
    # unlikely past 1 in 10^5; a pooler that cancelled the statement behind would hit most.
    assert hits <= 2, "%d statements behind the cancelled one were cancelled" % hits
    assert x.query("SELECT 1")[1] is None and y.query("SELECT 1")[1] is None
    x.close()
    y.close()
    print("%d iterations in %.1f s, %d statement(s) behind hit by PostgreSQL's second signal"
          % (iterations, time.monotonic() - t0, hits))


def test_cancel_from_another_thread_racing_the_release(shoal, pg, role):
    """Cancels racing the statement's own end: sent when a short statement may just have
    finished and the server may be on its way to another client. No other client's statement
    is ever cancelled."""
    s = shoal(databases={"db": {"dbname": "postgres", "pool_size": 1}},
              settings={"pool_mode": "transaction"})
    x, y = _login(s, role), _login(s, role)
    stop = threading.Event()
    failures = []

    def other():
        while not stop.is_set():
            rows, errors = y.query("SELECT pg_sleep(0.005)")[:2]
            if errors is not None:
                failures.append(errors)
                return

    t = threading.Thread(target=other, daemon=True)
    t.start()
    for i in range(40):
        x.send(query_message("SELECT pg_sleep(0.01)"))
        cancel_burst(s.host, s.port, x.backend_key, 2)
        errors = read_result(x)[1]
        assert errors == [] or [e.get("C") for e in errors] == ["57014"], errors
    stop.set()
    t.join(10)
    assert not failures, "the other client's statement was cancelled: %r" % failures
    x.close()
    y.close()
