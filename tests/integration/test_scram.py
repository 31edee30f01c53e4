"""Client authentication with SCRAM-SHA-256 (Shoal as the SCRAM server), the client auth types
against each server auth method, and SCRAM pass-through (no plaintext password in the config)."""
import base64
import os

import psycopg
import pytest

from conftest import MD5_PW, PLAIN_PW, SCRAM_PW
from helpers import error_text, wait_until
from scram_wire import Closed, ScramLogin, scram_secret
from wire import Wire

ALICE_SECRET = scram_secret("alice_pw")


def md5_secret(user, password):
    import hashlib
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


@pytest.fixture
def scram_shoal(shoal, pg):
    return shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
                 userlist={"alice": ALICE_SECRET, "bob": "bob_pw",
                           "carol": md5_secret("carol", "carol_pw")},
                 settings={"auth_type": "scram-sha-256"})


def login(s, user, password):
    w = Wire(s.host, s.port)
    sl = ScramLogin(w, user, "db")
    mechs = sl.start()
    err = sl.first()
    assert err is None, err
    return w, sl, mechs, sl.final(password)


@pytest.mark.parametrize("user", ["alice", "bob"], ids=["scram-secret", "plaintext-secret"])
def test_scram_auth_accepts_right_password(scram_shoal, user):
    c = scram_shoal.connect("db", user, password=user + "_pw")
    assert c.execute("SELECT current_user").fetchone()[0] == "trust_user"
    w, sl, mechs, err = login(scram_shoal, user, user + "_pw")
    assert mechs == ["SCRAM-SHA-256"] and err is None
    w.close()


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("bob", "wrong"),
                                           ("carol", "carol_pw"), ("mallory", "alice_pw")],
                         ids=["wrong-scram", "wrong-plain", "md5-secret", "unknown-user"])
def test_scram_auth_rejects_with_28P01_and_same_message(scram_shoal, user, password):
    w, sl, mechs, err = login(scram_shoal, user, password)
    w.close()
    assert err is not None, "login succeeded"
    assert err.get("C") == "28P01", err
    assert err.get("M") == 'password authentication failed for user "%s"' % user, err
    with pytest.raises(psycopg.OperationalError,
                       match='password authentication failed for user "%s"' % user):
        psycopg.connect(scram_shoal.dsn("db", user, password=password))
    # The log names the user and the client's address.
    wait_until(lambda: any('user "%s"' % user in l and "127.0.0.1:" in l
                           for l in scram_shoal.log().splitlines()), 5, what="log line")


def test_unknown_user_gets_a_stable_mock_salt(scram_shoal):
    """An unknown user sees the same salt and iteration count each time, like a real user whose
    secret is stored, so a probe cannot tell the two apart."""
    seen = []
    for user in ("mallory", "mallory", "alice"):
        w = Wire(scram_shoal.host, scram_shoal.port)
        sl = ScramLogin(w, user, "db")
        sl.start()
        assert sl.first() is None
        seen.append((sl.salt, sl.iters, len(base64.b64decode(sl.salt))))
        w.close()
    assert seen[0] == seen[1]
    assert seen[0][1] == seen[2][1] == 4096 and seen[0][2] == seen[2][2] == 16
    assert seen[0][0] != seen[2][0]


MALFORMED_FIRST = [
    (b"x,,n=,r=abc", "unexpected channel-binding flag"),
    (b"n,a=bob,n=,r=abc", "authorization identity"),
    (b"n,,m=ext,n=,r=abc", "mandatory extension"),
    (b"n,,n=,r=", "invalid nonce"),
    (b"n,,n=,r=a\x01b", "invalid nonce"),
    (b"n,,r=abc", "user name expected"),
    (b"p=tls-server-end-point,,n=,r=abc", "chose SCRAM-SHA-256"),
    (b"", "empty message"),
]


@pytest.mark.parametrize("raw,why", MALFORMED_FIRST, ids=[w for _, w in MALFORMED_FIRST])
def test_malformed_client_first_gets_08P01(scram_shoal, raw, why):
    w = Wire(scram_shoal.host, scram_shoal.port)
    sl = ScramLogin(w, "alice", "db")
    sl.start()
    err = sl.first(raw=raw)
    assert err is not None and err.get("C") == "08P01", err
    assert why in err.get("M"), err
    assert w.is_closed()
    w.close()


def test_unknown_mechanism_gets_08P01(scram_shoal):
    w = Wire(scram_shoal.host, scram_shoal.port)
    sl = ScramLogin(w, "alice", "db")
    sl.start()
    err = sl.first(mech="SCRAM-SHA-1")
    assert err is not None and err.get("C") == "08P01", err
    assert "mechanism not supported" in err.get("M")
    w.close()


def test_plus_mechanism_refused_without_tls(scram_shoal):
    w = Wire(scram_shoal.host, scram_shoal.port)
    sl = ScramLogin(w, "alice", "db")
    sl.start()
    err = sl.first(raw=b"p=tls-server-end-point,,n=,r=abc", mech="SCRAM-SHA-256-PLUS")
    assert err is not None and err.get("C") == "08P01", err
    w.close()


@pytest.mark.parametrize("mangle,why", [
    (lambda sl: b"c=eSws,r=" + sl.nonce.encode() + b",p=AAAA", "channel binding"),
    (lambda sl: b"c=biws,r=" + sl.nonce.encode() + b"x,p=" + b"A" * 43 + b"=", "nonce"),
    (lambda sl: b"c=biws,r=" + sl.nonce.encode(), "proof expected"),
    (lambda sl: b"c=biws,r=" + sl.nonce.encode() + b",p=AAAA", "invalid proof"),
    (lambda sl: b"c=biws,r=" + sl.nonce.encode() + b",p=" + b"A" * 43 + b"=,x=1", "invalid proof"),
    (lambda sl: b"r=" + sl.nonce.encode() + b",p=" + b"A" * 43 + b"=", "channel binding"),
], ids=["cbind-mismatch", "nonce-mismatch", "no-proof", "short-proof", "after-proof", "no-c"])
def test_malformed_client_final_gets_08P01(scram_shoal, mangle, why):
    w = Wire(scram_shoal.host, scram_shoal.port)
    sl = ScramLogin(w, "alice", "db")
    sl.start()
    assert sl.first() is None
    err = sl.final("alice_pw", raw=mangle(sl))
    assert err is not None and err.get("C") == "08P01", err
    assert why in err.get("M"), err
    w.close()


def test_password_message_instead_of_sasl_is_refused(scram_shoal):
    from wire import message
    w = Wire(scram_shoal.host, scram_shoal.port)
    sl = ScramLogin(w, "alice", "db")
    sl.start()
    w.send(message(b"p", b"alice_pw\0"))
    err = w.wait_error()
    assert err.get("C") == "08P01", err
    w.close()


def test_md5_setting_uses_scram_for_scram_secrets(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
              userlist={"alice": ALICE_SECRET, "bob": "bob_pw"}, settings={"auth_type": "md5"})
    w = Wire(s.host, s.port)
    sl = ScramLogin(w, "alice", "db")
    assert sl.start() == ["SCRAM-SHA-256"]
    w.close()
    w = Wire(s.host, s.port)
    assert w.startup("bob", "db", password="bob_pw") is None
    assert w.auth_codes[0] == 5
    w.close()
    c = s.connect("db", "alice", password="alice_pw")
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_plain_setting_checks_against_scram_secret(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
              userlist={"alice": ALICE_SECRET}, settings={"auth_type": "plain"})
    w = Wire(s.host, s.port)
    assert w.startup("alice", "db", password="alice_pw") is None
    assert w.auth_codes == [3, 0]
    w.close()
    w = Wire(s.host, s.port)
    err = w.startup("alice", "db", password="nope")
    assert err.get("C") == "28P01", err
    w.close()


# -- every client auth type x every server auth method ----------------------------------------

SERVER_USERS = [("scram_user", SCRAM_PW), ("md5_user", MD5_PW), ("pw_user", PLAIN_PW)]
CLIENT_AUTH = ["trust", "plain", "md5", "scram-sha-256"]


@pytest.mark.parametrize("auth_type", CLIENT_AUTH)
@pytest.mark.parametrize("user,password", SERVER_USERS, ids=[u for u, _ in SERVER_USERS])
def test_client_auth_type_by_server_method(shoal, pg, auth_type, user, password):
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={user: password},
              settings={"auth_type": auth_type})
    c = s.connect("db", user, password=password)
    assert c.execute("SELECT current_user").fetchone()[0] == user
    if auth_type != "trust":
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(s.dsn("db", user, password="not-" + password))


# -- pass-through ----------------------------------------------------------------------------


def stored_secret(pg, role):
    return pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))[0][0]


@pytest.mark.parametrize("auth_type", ["scram-sha-256", "md5"])
def test_scram_pass_through_without_plaintext(shoal, pg, auth_type):
    """Only PostgreSQL's own SCRAM secret is in the config: the server login uses the ClientKey
    recovered from the client's proof."""
    secret = stored_secret(pg, "scram_user")
    assert secret.startswith("SCRAM-SHA-256$")
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"scram_user": secret},
              settings={"auth_type": auth_type, "pool_mode": "session"})
    with open(s.ini) as f:
        ini = f.read()
    with open(s.settings.get("auth_file") or s.dir + "/userlist.txt") as f:
        userlist = f.read()
    assert SCRAM_PW not in ini and SCRAM_PW not in userlist
    c = s.connect("db", "scram_user", password=SCRAM_PW)
    assert c.execute("SELECT current_user").fetchone()[0] == "scram_user"
    c.close()
    # A second server connection (the first is still held by c2) logs in the same way.
    c1 = s.connect("db", "scram_user", password=SCRAM_PW)
    c2 = s.connect("db", "scram_user", password=SCRAM_PW)
    assert c1.execute("SELECT 1").fetchone()[0] == c2.execute("SELECT 2").fetchone()[0] - 1
    assert pg.count_backends(usename="scram_user") >= 2


def test_scram_secret_without_client_login_gives_clear_error(shoal, pg):
    """With trust on the client side there is no proof to take keys from."""
    secret = stored_secret(pg, "scram_user")
    s = shoal(databases={"db": {"dbname": "postgres", "user": "scram_user"}},
              userlist={"scram_user": secret}, settings={"auth_type": "trust"})
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "whoever")
    assert "needs a plaintext password" in error_text(e.value)


def test_scram_pass_through_wrong_server_secret_fails(shoal, pg):
    """A SCRAM secret that is not the server's: the client logs into Shoal, the server refuses."""
    secret = scram_secret(SCRAM_PW)  # right password, different salt: different keys
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"scram_user": secret},
              settings={"auth_type": "scram-sha-256"})
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "scram_user", password=SCRAM_PW)
    assert "password authentication failed" in error_text(e.value)


def test_scram_connection_closed_mid_exchange_is_clean(scram_shoal):
    for _ in range(3):
        w = Wire(scram_shoal.host, scram_shoal.port)
        sl = ScramLogin(w, "alice", "db")
        sl.start()
        assert sl.first() is None
        w.close()
    c = scram_shoal.connect("db", "alice", password="alice_pw")
    assert c.execute("SELECT 1").fetchone()[0] == 1
    assert Closed


def _server_first(s, user):
    """(salt, iterations) of one SCRAM exchange up to server-first; the connection is dropped."""
    w = Wire(s.host, s.port)
    sl = ScramLogin(w, user, "db")
    sl.start()
    assert sl.first() is None
    w.sock.close()
    return sl.salt, sl.iters


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def test_plaintext_and_unknown_users_look_and_cost_the_same(scram_shoal):
    """Issue 16: a plaintext secret got a fresh salt and a PBKDF2 per attempt, an unknown user a
    stable mock salt and a few HMACs: both told who exists. Now both have a stable salt and, once
    a plaintext user's keys are derived, the same work."""
    s = scram_shoal
    for user in ("bob", "nobody_here"):
        a, b = _server_first(s, user), _server_first(s, user)
        assert a == b and a[1] == 4096, (user, a, b)
    assert _server_first(s, "bob")[0] != _server_first(s, "nobody_here")[0]
    n = 150  # bounded; 150 PBKDF2s would be ~0.2 s of CPU
    cpu = {}
    for user in ("bob", "nobody_here"):
        t0 = _cpu_ticks(s.pid)
        for _ in range(n):
            _server_first(s, user)
        cpu[user] = _cpu_ticks(s.pid) - t0
    hz = os.sysconf("SC_CLK_TCK")
    assert cpu["bob"] <= cpu["nobody_here"] + 0.08 * hz, cpu
    # The cached keys still log in, and still refuse a wrong password.
    assert login(s, "bob", "bob_pw")[3] is None
    assert login(s, "bob", "wrong")[3] is not None
