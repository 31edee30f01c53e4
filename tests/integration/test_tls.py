"""TLS on both sides: client_tls_sslmode modes, SSLRequest and PostgreSQL 17 direct TLS, bytes
sent before the handshake refused, SCRAM-SHA-256-PLUS channel binding, server_tls_sslmode modes
against a PostgreSQL with ssl = on (verify-full with a wrong host name refused), and client auth
types against each server auth method over TLS."""
import os
import socket
import ssl
import struct
import subprocess

import psycopg
import pytest

from admin_helpers import admin
from conftest import MD5_PW, PG_BIN, PLAIN_PW, SCRAM_PW
from helpers import error_text, wait_until
from scram_wire import scram_secret
from tls_fixtures import SSL_ONLY_PW, client_tls_settings, pg_tls, tls_certs  # noqa: F401
from wire import Wire, message, parse_fields, startup_packet

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def tls_shoal(shoal, pg, certs, mode="require", userlist=None, auth_type="trust", **extra):
    settings = client_tls_settings(certs, mode, auth_type=auth_type, **extra)
    return shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
                 userlist=userlist, settings=settings)


def ssl_in_use(conn):
    return bool(conn.pgconn.ssl_in_use)


# -- towards clients -------------------------------------------------------------------------


def test_client_require_accepts_tls_and_refuses_plaintext(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "require")
    c = s.connect("db", "u", sslmode="verify-full", sslrootcert=tls_certs.path("ca.crt"))
    assert ssl_in_use(c)
    assert c.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(s.dsn("db", "u", sslmode="disable"))
    # The Unix socket is not TCP: no TLS there, and no TLS required.
    c2 = s.connect("db", "u", host=s.dir)
    assert not ssl_in_use(c2)


def test_client_prefer_allows_both(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "prefer")
    assert ssl_in_use(s.connect("db", "u", sslmode="require"))
    assert not ssl_in_use(s.connect("db", "u", sslmode="disable"))


def test_client_disable_answers_no(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "disable")
    with pytest.raises(psycopg.OperationalError, match="does not support SSL"):
        psycopg.connect(s.dsn("db", "u", sslmode="require"))
    assert not ssl_in_use(s.connect("db", "u", sslmode="prefer"))


def test_client_verify_ca_needs_a_client_certificate(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "verify-ca")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(s.dsn("db", "u", sslmode="require", sslcert=tls_certs.path("nonexistent"),
                              sslkey=tls_certs.path("nonexistent")))
    c = s.connect("db", "u", sslmode="require", sslcert=tls_certs.path("client.crt"),
                  sslkey=tls_certs.path("client.key"))
    assert ssl_in_use(c)


def test_client_tls_protocols_setting_is_enforced(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "require", client_tls_protocols="tlsv1.3")
    ctx = ssl.create_default_context(cafile=tls_certs.path("ca.crt"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sock = socket.create_connection((s.host, s.port), timeout=5)
    sock.sendall(SSL_REQUEST)
    assert sock.recv(1) == b"S"
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(sock, server_hostname="localhost")
    sock.close()
    ctx = ssl.create_default_context(cafile=tls_certs.path("ca.crt"))
    sock = socket.create_connection((s.host, s.port), timeout=5)
    sock.sendall(SSL_REQUEST)
    assert sock.recv(1) == b"S"
    t = ctx.wrap_socket(sock, server_hostname="localhost")
    assert t.version() == "TLSv1.3"
    t.close()


def test_bad_certificate_file_fails_at_startup(pg, tls_certs, tmp_path):
    from conftest import SHOAL_BIN
    ini = tmp_path / "s.ini"
    ini.write_text("[databases]\n[pgbouncer]\nlisten_port = 1\nclient_tls_sslmode = require\n"
                   "client_tls_key_file = %s\nclient_tls_cert_file = %s\n"
                   % (tls_certs.path("shoal.key"), tls_certs.path("missing.crt")))
    r = subprocess.run([SHOAL_BIN, str(ini)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "missing.crt" in r.stderr, r.stderr


def test_bytes_after_ssl_request_are_refused(shoal, pg, tls_certs):
    """CVE-2021-23222 class: a startup packet sent in plaintext right behind the SSLRequest (as
    a man in the middle would inject it) must not be read as if it came through TLS."""
    s = tls_shoal(shoal, pg, tls_certs, "prefer")
    w = Wire(s.host, s.port)
    w.send(SSL_REQUEST + startup_packet({"user": "u", "database": "db"}))
    err = w.wait_error()
    assert err.get("C") == "08P01", err
    assert "unencrypted data after SSL request" in err.get("M"), err
    assert w.is_closed()
    w.close()
    assert "unencrypted data after SSL request" in s.log()


def direct_tls_socket(s, certs, alpn=("postgresql",)):
    ctx = ssl.create_default_context(cafile=certs.path("ca.crt"))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection((s.host, s.port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_msg(sock):
    hdr = b""
    while len(hdr) < 5:
        chunk = sock.recv(5 - len(hdr))
        if not chunk:
            raise EOFError
        hdr += chunk
    (n,) = struct.unpack("!i", hdr[1:5])
    body = b""
    while len(body) < n - 4:
        body += sock.recv(n - 4 - len(body))
    return hdr[:1], body


def test_direct_tls_with_alpn_logs_in(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "require")
    t = direct_tls_socket(s, tls_certs)
    assert t.selected_alpn_protocol() == "postgresql"
    t.sendall(startup_packet({"user": "u", "database": "db"}))
    kinds = []
    while True:
        kind, body = read_msg(t)
        kinds.append(kind)
        if kind in (b"Z", b"E"):
            break
    assert kinds[0] == b"R" and kinds[-1] == b"Z", kinds
    t.sendall(message(b"Q", b"SELECT 41 + 1\0"))
    rows = []
    while True:
        kind, body = read_msg(t)
        if kind == b"D":
            rows.append(body)
        if kind == b"Z":
            break
    assert rows and rows[0].endswith(b"42")
    t.close()


def test_direct_tls_without_alpn_is_refused(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "require")
    t = direct_tls_socket(s, tls_certs, alpn=None)
    t.sendall(startup_packet({"user": "u", "database": "db"}))
    kind, body = read_msg(t)
    assert kind == b"E"
    err = parse_fields(body)
    assert err.get("C") == "08P01" and "ALPN" in err.get("M"), err
    t.close()


def test_direct_tls_with_another_alpn_fails_the_handshake(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "require")
    with pytest.raises(ssl.SSLError):
        direct_tls_socket(s, tls_certs, alpn=("http/1.1",))


def test_direct_tls_refused_when_client_tls_disabled(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "disable")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        t = direct_tls_socket(s, tls_certs)
        t.sendall(startup_packet({"user": "u", "database": "db"}))
        read_msg(t)


# -- SCRAM channel binding ---------------------------------------------------------------------


def test_scram_plus_channel_binding_with_psycopg(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "require", auth_type="scram-sha-256",
                  userlist={"alice": scram_secret("alice_pw")})
    c = s.connect("db", "alice", password="alice_pw", sslmode="require",
                  channel_binding="require")
    assert ssl_in_use(c) and c.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(s.dsn("db", "alice", password="nope", sslmode="require",
                              channel_binding="require"))


def test_scram_plus_channel_binding_with_psql(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "require", auth_type="scram-sha-256",
                  userlist={"alice": "alice_pw"})
    env = dict(os.environ, PGPASSWORD="alice_pw")
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-At", "-c", "SELECT 'bound'",
                        "host=%s port=%d dbname=db user=alice sslmode=verify-full sslrootcert=%s "
                        "channel_binding=require" % (s.host, s.port, tls_certs.path("ca.crt"))],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "bound", r.stderr


def test_scram_plus_not_offered_without_tls(shoal, pg, tls_certs):
    s = tls_shoal(shoal, pg, tls_certs, "prefer", auth_type="scram-sha-256",
                  userlist={"alice": "alice_pw"})
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(s.dsn("db", "alice", password="alice_pw", sslmode="disable",
                              channel_binding="require"))
    c = s.connect("db", "alice", password="alice_pw", sslmode="disable")
    assert not ssl_in_use(c)


def test_scram_y_flag_over_tls_is_a_downgrade(shoal, pg, tls_certs):
    """A client that says "y" (I support binding, you do not) while we offer -PLUS over TLS is
    being downgraded by someone in the middle: refused."""
    s = tls_shoal(shoal, pg, tls_certs, "require", auth_type="scram-sha-256",
                  userlist={"alice": "alice_pw"})
    ctx = ssl.create_default_context(cafile=tls_certs.path("ca.crt"))
    raw = socket.create_connection((s.host, s.port), timeout=5)
    raw.sendall(SSL_REQUEST)
    assert raw.recv(1) == b"S"
    t = ctx.wrap_socket(raw, server_hostname="localhost")
    t.sendall(startup_packet({"user": "alice", "database": "db"}))
    kind, body = read_msg(t)
    assert kind == b"R" and struct.unpack("!i", body[:4])[0] == 10
    assert b"SCRAM-SHA-256-PLUS\0" in body
    data = b"y,,n=,r=abcdef"
    t.sendall(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data))
    kind, body = read_msg(t)
    assert kind == b"E"
    err = parse_fields(body)
    assert err.get("C") == "08P01" and "negotiation" in err.get("M"), err
    t.close()


# -- towards servers -------------------------------------------------------------------------


def server_shoal(shoal, pg_tls, mode, user="trust_user", host=None, **settings):
    entry = {"dbname": "postgres", "user": user, "host": host or pg_tls.host, "port": pg_tls.port}
    if user == "ssl_only_user":
        entry["password"] = SSL_ONLY_PW
    settings = dict(settings, server_tls_sslmode=mode)
    return shoal(databases={"db": entry}, settings=settings, pg_cluster=pg_tls)


@pytest.mark.parametrize("mode", ["prefer", "require", "verify-ca", "verify-full"])
def test_server_tls_modes_use_tls(shoal, pg_tls, tls_certs, mode):
    extra = {"server_tls_ca_file": tls_certs.path("ca.crt")} if mode.startswith("verify") else {}
    s = server_shoal(shoal, pg_tls, mode, user="ssl_only_user", **extra)
    c = s.connect("db", "x")
    assert c.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]


def test_server_tls13_ciphers_choose_the_suite_towards_the_server(shoal, pg_tls, tls_certs):
    s = server_shoal(shoal, pg_tls, "require", user="ssl_only_user",
                     server_tls13_ciphers="TLS_CHACHA20_POLY1305_SHA256")
    c = s.connect("db", "x")
    got = c.execute("SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert got.fetchone() == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")


def test_server_tls_disable_uses_plaintext(shoal, pg_tls):
    s = server_shoal(shoal, pg_tls, "disable")
    c = s.connect("db", "x")
    assert not c.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]


def test_server_hostssl_rule_refuses_plaintext_login(shoal, pg_tls):
    s = shoal(databases={"db": {"dbname": "postgres", "user": "ssl_only_user",
                                "password": SSL_ONLY_PW, "host": pg_tls.host,
                                "port": pg_tls.port}},
              settings={"server_tls_sslmode": "disable"}, pg_cluster=pg_tls)
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "x")
    assert "no encryption" in error_text(e.value) or "rejects connection" in error_text(e.value)


def test_server_verify_full_refuses_wrong_host_name(shoal, pg_tls, tls_certs):
    """The server's certificate names IP 127.0.0.1 only: connecting by the name "localhost"
    reaches the same server, but verify-full must refuse it."""
    s = server_shoal(shoal, pg_tls, "verify-full", host="localhost",
                     server_tls_ca_file=tls_certs.path("ca.crt"))
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "x")
    assert "certificate verify failed" in error_text(e.value), error_text(e.value)
    wait_until(lambda: "hostname mismatch" in s.log(), 5, what="log line")


def test_server_verify_ca_refuses_unknown_ca(shoal, pg_tls, tls_certs):
    s = server_shoal(shoal, pg_tls, "verify-ca", server_tls_ca_file=tls_certs.path("other-ca.crt"))
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "x")
    assert "certificate verify failed" in error_text(e.value)


def test_server_require_refuses_server_without_tls(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
              settings={"server_tls_sslmode": "require"})
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "x")
    assert "server does not support TLS" in error_text(e.value)


SERVER_USERS = [("scram_user", SCRAM_PW), ("md5_user", MD5_PW), ("pw_user", PLAIN_PW),
                ("ssl_only_user", SSL_ONLY_PW)]


@pytest.mark.parametrize("auth_type", ["plain", "md5", "scram-sha-256"])
@pytest.mark.parametrize("user,password", SERVER_USERS, ids=[u for u, _ in SERVER_USERS])
def test_tls_both_sides_client_auth_by_server_method(shoal, pg_tls, tls_certs, auth_type, user,
                                                     password):
    settings = client_tls_settings(tls_certs, "require", auth_type=auth_type,
                                   server_tls_sslmode="verify-full",
                                   server_tls_ca_file=tls_certs.path("ca.crt"))
    s = shoal(databases={"db": {"dbname": "postgres", "host": pg_tls.host, "port": pg_tls.port}},
              userlist={user: password}, settings=settings, pg_cluster=pg_tls)
    c = s.connect("db", user, password=password, sslmode="require")
    assert ssl_in_use(c)
    assert c.execute("SELECT current_user, ssl FROM pg_stat_ssl "
                     "WHERE pid = pg_backend_pid()").fetchone() == (user, True)


def test_scram_pass_through_over_tls(shoal, pg_tls, tls_certs):
    secret = pg_tls.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'ssl_only_user'")[0][0]
    settings = client_tls_settings(tls_certs, "require", auth_type="scram-sha-256",
                                   server_tls_sslmode="require")
    s = shoal(databases={"db": {"dbname": "postgres", "host": pg_tls.host, "port": pg_tls.port}},
              userlist={"ssl_only_user": secret}, settings=settings, pg_cluster=pg_tls)
    c = s.connect("db", "ssl_only_user", password=SSL_ONLY_PW, sslmode="require",
                  channel_binding="require")
    assert c.execute("SELECT current_user").fetchone()[0] == "ssl_only_user"


def test_server_bytes_after_ssl_answer_are_refused(shoal, pg):
    """CVE-2021-23214 class: a 'server' that answers SSLRequest with 'S' and, in the same
    plaintext packet, protocol bytes (as a man in the middle would inject them) is refused."""
    import threading
    from helpers import free_port
    port = free_port()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    lsock.settimeout(10)
    got = []

    def fake_server():
        try:
            conn, _ = lsock.accept()
            got.append(conn.recv(8))
            conn.sendall(b"S" + message(b"R", struct.pack("!i", 0)))
            conn.recv(100)
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=fake_server, daemon=True)
    t.start()
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user", "host": "127.0.0.1",
                                "port": port}},
              settings={"server_tls_sslmode": "prefer"})
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "x")
    t.join(10)
    lsock.close()
    assert got and got[0] == SSL_REQUEST
    assert "unencrypted data after SSL response" in error_text(e.value)


def test_tls_settings_reload(shoal, pg, tls_certs):
    """SIGHUP turns client TLS on; a reload with a missing certificate keeps the running TLS
    settings (the rest of the file applies, as in PgBouncer)."""
    import signal
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
              settings={"client_tls_sslmode": "disable"})
    with pytest.raises(psycopg.OperationalError, match="does not support SSL"):
        psycopg.connect(s.dsn("db", "u", sslmode="require"))
    s.settings.update(client_tls_settings(tls_certs, "require"))
    s.write_config(s.port)
    s.send_signal(signal.SIGHUP)

    def tls_works():
        try:
            with psycopg.connect(s.dsn("db", "u", sslmode="require")) as c:
                return bool(c.pgconn.ssl_in_use)
        except psycopg.OperationalError:
            return False
    wait_until(tls_works, 10, what="TLS after reload")
    s.settings["client_tls_cert_file"] = tls_certs.path("missing.crt")
    s.write_config(s.port)
    s.send_signal(signal.SIGHUP)
    wait_until(lambda: "TLS settings could not be applied" in s.log()
               and "missing.crt" in s.log(), 10, what="TLS kept at reload")
    assert tls_works()
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(s.dsn("db", "u", sslmode="disable"))


# -- TLS settings changed at run time ---------------------------------------------------------


def test_server_tls_change_recycles_servers(shoal, pg_tls):
    """SET server_tls_sslmode: a server connected under the old setting is not used again (as
    PgBouncer tags it for disconnect); the client's next transaction runs on a new server that
    uses the new setting, and the old one is closed."""
    s = server_shoal(shoal, pg_tls, "disable", pool_mode="transaction")
    c = s.connect("db", "x")
    q = "SELECT pid, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    pid, on = c.execute(q).fetchone()
    assert not on
    admin(s).execute("SET server_tls_sslmode = require")
    pid2, on = c.execute(q).fetchone()
    assert on and pid2 != pid
    gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
    wait_until(lambda: c.execute(gone, (pid,)).fetchone()[0] == 0, 10, what="old server closed")
    assert "database configuration changed (server TLS settings)" in s.log()
    # A SET that changes nothing on the server side keeps the servers.
    admin(s).execute("SET server_tls_sslmode = require")
    assert c.execute(q).fetchone()[0] == pid2


def test_client_tls_key_without_its_certificate_keeps_the_running_pair(shoal, pg, tls_certs):
    """A SET of client_tls_key_file that does not match the certificate: a notice, and the
    running key and certificate stay in force; the SET of the matching certificate completes
    the pair and applies it (PgBouncer's way of changing both, one SET at a time)."""
    s = tls_shoal(shoal, pg, tls_certs, "require")
    ca = tls_certs.path("ca.crt")
    a = admin(s)
    notices = []
    a.add_notice_handler(lambda d: notices.append((d.message_primary, d.message_detail)))
    a.execute("SET client_tls_key_file = '%s'" % tls_certs.path("client.key"))
    assert notices and notices[0][0] == \
        "TLS settings could not be applied, still using old configuration", notices
    assert "key values mismatch" in notices[0][1], notices
    c = s.connect("db", "u", sslmode="verify-full", sslrootcert=ca)  # still shoal.crt
    assert ssl_in_use(c)
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(s.dsn("db", "u", sslmode="disable"))
    notices.clear()
    a.execute("SET client_tls_cert_file = '%s'" % tls_certs.path("client.crt"))
    assert not notices
    # Now Shoal shows client.crt (CN=alice, no address): verify-full fails, verify-ca passes.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(s.dsn("db", "u", sslmode="verify-full", sslrootcert=ca))
    assert ssl_in_use(s.connect("db", "u", sslmode="verify-ca", sslrootcert=ca))


def _s_client(s, *args):
    """openssl s_client through Shoal's SSLRequest: (handshake done, its output)."""
    r = subprocess.run(["openssl", "s_client", "-starttls", "postgres", "-connect",
                        "%s:%d" % (s.host, s.port), "-brief"] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    out = r.stdout + r.stderr
    return "CONNECTION ESTABLISHED" in out, out


def test_client_tls13_ciphers_ecdhcurve_and_dheparams_are_applied(shoal, pg, tls_certs):
    """PgBouncer's client_tls13_ciphers (SSL_CTX_set_ciphersuites), client_tls_ecdhcurve
    (the key-exchange groups) and client_tls_dheparams (auto: DHE suites with 2048-bit DH;
    none: no DHE), seen from openssl s_client."""
    s = tls_shoal(shoal, pg, tls_certs, "require", client_tls13_ciphers="TLS_AES_128_GCM_SHA256",
                  client_tls_ecdhcurve="secp384r1")
    ok, out = _s_client(s)
    assert ok and "TLS_AES_128_GCM_SHA256" in out and "secp384r1" in out, out
    ok, out = _s_client(s, "-groups", "X25519")
    assert not ok, out
    c = s.connect("db", "u", sslmode="require")
    # PgBouncer's login-line suffix, which operators (and its test suite) look for
    wait_until(lambda: "login ok (pool " in s.log()
               and ") tls=TLSv1.3/TLS_AES_128_GCM_SHA256" in s.log(), 10)
    ok, out = _s_client(s, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256")
    assert ok and "DH, 2048 bits" in out, out
    s2 = tls_shoal(shoal, pg, tls_certs, "require", client_tls_dheparams="none")
    ok, out = _s_client(s2, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256")
    assert not ok, out
    ok, out = _s_client(s2)
    assert ok and "TLS_AES_256_GCM_SHA384" in out, out  # OpenSSL's first TLS 1.3 suite


@pytest.mark.parametrize("setting,value,says", [
    ("client_tls_dheparams", "legacy", "client_tls_dheparams = legacy (1024-bit DH) is not"),
    ("client_tls_ecdhcurve", "none", "client_tls_ecdhcurve = none is not supported"),
    ("client_tls_ecdhcurve", "nosuchcurve", "client_tls_ecdhcurve = nosuchcurve: not a curve"),
    ("client_tls13_ciphers", "TLS_NO_SUCH_SUITE", "TLS_NO_SUCH_SUITE: failed to set the TLSv1.3"),
    ("client_tls_dheparams", "maybe", "client_tls_dheparams"),
])
def test_key_exchange_settings_shoal_cannot_honour_are_refused_at_start(
        pg, tls_certs, tmp_path, setting, value, says):
    from conftest import SHOAL_BIN
    ini = tmp_path / "s.ini"
    ini.write_text("[databases]\n[pgbouncer]\nlisten_port = 1\nclient_tls_sslmode = require\n"
                   "client_tls_key_file = %s\nclient_tls_cert_file = %s\n%s = %s\n"
                   % (tls_certs.path("shoal.key"), tls_certs.path("shoal.crt"), setting, value))
    r = subprocess.run([SHOAL_BIN, str(ini)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and says in r.stderr, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if says in ln]) == 1, r.stderr
