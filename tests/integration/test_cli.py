"""Command line: --version, --help, --check."""
import os
import re
import subprocess

from conftest import SHOAL_BIN


def run(*args):
    return subprocess.run([SHOAL_BIN, *args], capture_output=True, text=True, timeout=20)


def write(tmp_path, text):
    p = tmp_path / "shoal.ini"
    p.write_text(text)
    return str(p)


GOOD = """
[databases]
appdb = host=127.0.0.1 port=5432 dbname=app pool_size=7
other = postgres://u:p@127.0.0.1:5432/other
* = host=127.0.0.1

[users]
batch = pool_mode=session max_user_connections=3

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 17432
auth_type = trust
pool_mode = transaction
default_pool_size = 13
query_wait_timeout = 0.5
"""


def test_version_prints_version_and_exits_zero():
    r = run("--version")
    assert r.returncode == 0, r.stderr
    # As PgBouncer prints its PACKAGE_STRING ("PgBouncer 1.25.1"), and the same text as
    # SHOW VERSION (test_admin_show.py).
    assert re.fullmatch(r"Shoal \d+\.\d+\.\d+", r.stdout.splitlines()[0]), r.stdout


def test_help_lists_options_and_exits_zero():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "--check" in out and "--version" in out


def test_check_valid_file_prints_effective_config_and_exits_zero(tmp_path):
    r = run("--check", write(tmp_path, GOOD))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "default_pool_size" in out and "13" in out
    assert "17432" in out
    assert "appdb" in out


def test_check_rejects_invalid_pool_mode(tmp_path):
    r = run("--check", write(tmp_path, GOOD.replace("pool_mode = transaction",
                                                    "pool_mode = sometimes")))
    assert r.returncode != 0
    assert "pool_mode" in (r.stdout + r.stderr)


def test_check_rejects_non_numeric_value(tmp_path):
    r = run("--check", write(tmp_path, GOOD.replace("default_pool_size = 13",
                                                    "default_pool_size = lots")))
    assert r.returncode != 0
    assert "default_pool_size" in (r.stdout + r.stderr)


def test_check_rejects_missing_file(tmp_path):
    r = run("--check", os.path.join(str(tmp_path), "does-not-exist.ini"))
    assert r.returncode != 0
    assert (r.stdout + r.stderr).strip()


def test_second_instance_on_the_same_unix_socket_fails(shoal, pg, role):
    """The Unix socket file of a running Shoal is not taken over by a second one."""
    s = shoal(databases={"db": {"dbname": "postgres"}})
    ini = open(s.ini).read().replace("listen_addr = 127.0.0.1", "listen_addr =")
    other = os.path.join(s.dir, "second.ini")
    with open(other, "w") as f:
        f.write(ini)
    r = subprocess.run([SHOAL_BIN, other], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "another process is listening on it" in r.stdout + r.stderr
    s.connect("db", role).execute("SELECT 1")  # the first one still serves its socket
