"""auth_type = hba: auth_hba_file rules pick the method per connection (first match wins):
trust, reject, md5, scram-sha-256, password, peer, cert; local/host/hostssl/hostnossl;
sameuser and @file lists; and auth_type = cert."""
import os
import subprocess

import psycopg
import pytest

from helpers import error_text
from scram_wire import scram_secret
from tls_fixtures import client_tls_settings, tls_certs  # noqa: F401
from wire import Wire

USERLIST = {"bob": scram_secret("bob_pw"), "carol": "carol_pw", "dave": "dave_pw",
            "erin": "erin_pw"}


def hba_shoal(shoal, tmp_path, rules, settings=None, files=None):
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "hba.conf"
    path.write_text(rules)
    s = dict(settings or {}, auth_type="hba", auth_hba_file=str(path))
    return shoal(databases={"*": {"dbname": "postgres", "user": "trust_user"}},
                 userlist=USERLIST, settings=s)


RULES = """
# type  database  user     address        method
host    denied    all      127.0.0.1/32   reject
host    all       bob      127.0.0.1/32   scram-sha-256
host    all       carol    127.0.0.1/32   md5
host    all       dave     127.0.0.1/32   password
host    all       trusted  127.0.0.1/32   trust
host    sameuser  all      127.0.0.0/8    trust
host    all       @admins.txt 127.0.0.1 255.255.255.255 md5
local   all       all                     peer
"""


@pytest.fixture
def hs(shoal, pg, tmp_path):
    return hba_shoal(shoal, tmp_path, RULES, files={"admins.txt": "erin, frank\n"})


@pytest.mark.parametrize("user,code", [("bob", 10), ("carol", 5), ("dave", 3), ("trusted", 0)])
def test_hba_rule_picks_the_method(hs, user, code):
    w = Wire(hs.host, hs.port)
    w.send(__import__("wire").startup_packet({"user": user, "database": "db"}))
    mtype, body = w.read_msg()
    assert mtype == b"R" and int.from_bytes(body[:4], "big") == code
    w.close()
    pw = {"bob": "bob_pw", "carol": "carol_pw", "dave": "dave_pw"}.get(user)
    c = hs.connect("db", user, password=pw)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    if pw:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(hs.dsn("db", user, password="wrong"))


def test_hba_reject_rule(hs):
    with pytest.raises(psycopg.OperationalError) as e:
        hs.connect("denied", "trusted")
    text = error_text(e.value)
    assert 'pg_hba.conf rejects connection for host "127.0.0.1", user "trusted", database ' \
           '"denied", no encryption' in text, text
    assert "pg_hba.conf rejects connection" in hs.log()


def test_hba_no_matching_rule(hs):
    with pytest.raises(psycopg.OperationalError) as e:
        hs.connect("db", "mallory", password="x")
    assert 'no pg_hba.conf entry for host "127.0.0.1", user "mallory"' in error_text(e.value)


def test_hba_sameuser_and_at_file(hs):
    c = hs.connect("zed", "zed")  # database named like the user: trust
    assert c.execute("SELECT 1").fetchone()[0] == 1
    c = hs.connect("db", "erin", password="erin_pw")  # from @admins.txt: md5
    assert c.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        hs.connect("zed", "yan")


def test_hba_peer_on_unix_socket(hs):
    me = __import__("pwd").getpwuid(os.getuid()).pw_name
    c = hs.connect("db", me, host=hs.dir)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    other = "alice" if me != "alice" else "bob"
    with pytest.raises(psycopg.OperationalError) as e:
        hs.connect("db", other, host=hs.dir)
    assert 'Peer authentication failed for user "%s"' % other in error_text(e.value)


def test_bad_hba_file_refuses_start(pg, tmp_path):
    from conftest import SHOAL_BIN
    (tmp_path / "hba.conf").write_text("host all all 10.0.0.0/8 trust\nhost all all nowhere md5\n")
    ini = tmp_path / "s.ini"
    ini.write_text("[databases]\n[pgbouncer]\nlisten_port = 1\nauth_type = hba\n"
                   "auth_hba_file = %s\n" % (tmp_path / "hba.conf"))
    r = subprocess.run([SHOAL_BIN, str(ini)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "line 2: invalid IP address" in r.stderr, r.stderr
    ini.write_text("[databases]\n[pgbouncer]\nlisten_port = 1\nauth_type = hba\n")
    r = subprocess.run([SHOAL_BIN, str(ini)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "needs auth_hba_file" in r.stderr, r.stderr


TLS_RULES = """
hostssl   all alice   127.0.0.1/32 cert
hostssl   all carol   127.0.0.1/32 md5
hostnossl all carol   127.0.0.1/32 reject
"""


@pytest.fixture
def hs_tls(shoal, pg, tmp_path, tls_certs):
    return hba_shoal(shoal, tmp_path, TLS_RULES, settings=client_tls_settings(tls_certs, "prefer"))


def test_hba_hostssl_and_hostnossl(hs_tls):
    c = hs_tls.connect("db", "carol", password="carol_pw", sslmode="require")
    assert c.pgconn.ssl_in_use
    with pytest.raises(psycopg.OperationalError) as e:
        hs_tls.connect("db", "carol", password="carol_pw", sslmode="disable")
    assert "pg_hba.conf rejects connection" in error_text(e.value)
    assert "no encryption" in error_text(e.value)


def test_hba_cert_method(hs_tls, tls_certs):
    cert = dict(sslcert=tls_certs.path("client.crt"), sslkey=tls_certs.path("client.key"))
    c = hs_tls.connect("db", "alice", sslmode="require", **cert)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError) as e:
        hs_tls.connect("db", "alice", sslmode="require")  # no certificate
    assert 'certificate authentication failed for user "alice"' in error_text(e.value)


def test_auth_type_cert(shoal, pg, tls_certs):
    settings = client_tls_settings(tls_certs, "require", auth_type="cert")
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}}, settings=settings)
    cert = dict(sslcert=tls_certs.path("client.crt"), sslkey=tls_certs.path("client.key"))
    c = s.connect("db", "alice", sslmode="require", **cert)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "bob", sslmode="require", **cert)  # certificate names alice
    assert 'certificate authentication failed for user "bob"' in error_text(e.value)
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "alice", sslmode="require")
    assert "certificate authentication failed" in error_text(e.value)
