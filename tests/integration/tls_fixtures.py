"""TLS fixtures: a throwaway CA with server and client certificates made by the openssl command,
and a separate PostgreSQL cluster with ssl = on and hba rules per auth method (hostssl and
hostnossl included). The plain cluster of conftest.py is left as it is."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import IS_ROOT, PgCluster

SSL_ONLY_PW = "ssl_only_pw"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


class Certs:
    """ca.crt; server.crt/key (CN=pg.example.test, SAN IP:127.0.0.1 only, so that verify-full
    passes for 127.0.0.1 and fails for the name "localhost"); shoal.crt/key (what Shoal shows clients:
    SAN DNS:localhost, IP:127.0.0.1); client.crt/key (CN=alice); other-ca.crt (an unrelated CA)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="shoal-tls-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                 "-out", "ca.crt", "-days", "2", "-subj", "/CN=Shoal Test CA", cwd=d)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key",
                 "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=Other CA", cwd=d)
        self._leaf("server", "/CN=pg.example.test", "IP:127.0.0.1")
        self._leaf("shoal", "/CN=localhost", "DNS:localhost,IP:127.0.0.1")
        self._leaf("client", "/CN=alice", None)
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o600 if f.endswith(".key") else 0o644)

    def _leaf(self, name, subj, san):
        d = self.dir
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".csr", "-subj", subj, cwd=d)
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if san:
                f.write("subjectAltName=%s\n" % san)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-sha256",
                 "-extfile", ext, cwd=d)

    def path(self, name):
        return os.path.join(self.dir, name)

    def destroy(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class TlsPgCluster(PgCluster):
    """ssl = on with the server certificate; scram_user/md5_user/pw_user as in the plain
    cluster, on TLS or not; ssl_only_user only over TLS (hostssl), refused without it."""

    def __init__(self, certs):
        super().__init__("pgtls")
        self.certs = certs

    def init(self):
        super().init()
        for f in ("server.crt", "server.key"):
            dst = os.path.join(self.data, f)
            shutil.copy(self.certs.path(f), dst)
            os.chmod(dst, 0o600)
            if IS_ROOT:
                shutil.chown(dst, "postgres", "postgres")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        hba = ["hostssl all ssl_only_user 127.0.0.1/32 scram-sha-256",
               "hostnossl all ssl_only_user 127.0.0.1/32 reject"]
        for user, method in (("scram_user", "scram-sha-256"), ("md5_user", "md5"),
                             ("pw_user", "password")):
            hba.append("host all %s 127.0.0.1/32 %s" % (user, method))
        hba += ["local all all trust", "host all all 127.0.0.1/32 trust"]
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("\n".join(hba) + "\n")
        return self

    def setup_roles(self):
        super().setup_roles()
        self.sql("SET password_encryption = 'scram-sha-256'; "
                 "CREATE ROLE ssl_only_user LOGIN PASSWORD '%s'" % SSL_ONLY_PW)
        return self

    def ssl_backends(self, usename):
        """How many of usename's backends use TLS, and how many do not."""
        rows = self.sql("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a "
                        "ON a.pid = s.pid WHERE a.usename = %s", (usename,))
        return sum(1 for r in rows if r[0]), sum(1 for r in rows if not r[0])


@pytest.fixture(scope="session")
def tls_certs():
    c = Certs()
    yield c
    c.destroy()


@pytest.fixture(scope="session")
def pg_tls(tls_certs):
    cluster = TlsPgCluster(tls_certs).init()
    try:
        cluster.start().setup_roles()
        yield cluster
    finally:
        cluster.destroy()


def client_tls_settings(certs, mode="require", **extra):
    s = {"client_tls_sslmode": mode, "client_tls_key_file": certs.path("shoal.key"),
         "client_tls_cert_file": certs.path("shoal.crt"), "client_tls_ca_file": certs.path("ca.crt")}
    s.update(extra)
    return s
