"""Failed logins per source address (issue 16): auth_failure_limit within auth_failure_window
blocks the address for the rest of its window; logged once; the Unix socket is not counted."""
import psycopg
import pytest

from conftest import PLAIN_PW

LIMIT = 5


def _fail(s, password="wrong", host=None):
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(s.dsn("db", "pw_user", password=password, host=host))
    return str(e.value)


def test_failed_logins_from_one_address_are_throttled(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"pw_user": PLAIN_PW},
              settings={"auth_type": "md5", "auth_failure_limit": LIMIT,
                        "auth_failure_window": 60}, verbose=False)
    for _ in range(LIMIT):
        assert "password authentication failed" in _fail(s)
    # Blocked now: even the right password is refused, without running the authentication.
    for pw in ("wrong", PLAIN_PW):
        msg = _fail(s, pw)
        assert "too many failed logins from 127.0.0.1" in msg, msg
        assert "auth_failure_limit" in msg
    log = s.log()
    assert log.count("failed logins within auth_failure_window") == 1, log
    assert "too many failed logins" not in log  # refusals are counted, not logged one by one
    # The Unix socket is not throttled.
    with psycopg.connect(s.dsn("db", "pw_user", password=PLAIN_PW, host=s.dir)) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_throttle_is_off_by_default(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"pw_user": PLAIN_PW},
              settings={"auth_type": "md5"})
    for _ in range(3 * LIMIT):
        assert "password authentication failed" in _fail(s)
    with psycopg.connect(s.dsn("db", "pw_user", password=PLAIN_PW)) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_a_throttled_address_gets_in_once_its_window_is_over(shoal, pg):
    from helpers import wait_until
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"pw_user": PLAIN_PW},
              settings={"auth_type": "md5", "auth_failure_limit": 2,
                        "auth_failure_window": 1})
    for _ in range(2):
        _fail(s)

    def gets_in():
        try:
            with psycopg.connect(s.dsn("db", "pw_user", password=PLAIN_PW)) as c:
                return c.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError as e:
            assert "too many failed logins" in str(e), str(e)
            return False
    wait_until(gets_in, timeout=10, interval=0.2, what="the window over")


def test_a_storm_of_wrong_passwords_is_one_log_line_a_second(shoal, pg):
    """40 wrong passwords in a row: every client gets its 28P01, the log has one failure line
    per second (of the seconds the storm took) and sums up the others, none lost."""
    import re
    import time
    from helpers import wait_until
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"pw_user": PLAIN_PW},
              settings={"auth_type": "md5"})
    t0 = time.monotonic()
    for _ in range(40):
        assert "password authentication failed" in _fail(s)
    took = time.monotonic() - t0

    def counted():
        log = s.log()
        lines = len(re.findall(r"WARNING C-\d+[^\n]*: password authentication failed", log))
        summed = sum(int(n) for n in re.findall(r"(\d+) more failed logins", log))
        return lines, summed
    wait_until(lambda: sum(counted()) == 40, timeout=5, what="every failure logged or counted")
    lines, summed = counted()
    assert 1 <= lines <= int(took) + 2, (lines, took)
    assert summed == 40 - lines
