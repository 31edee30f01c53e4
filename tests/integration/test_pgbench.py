"""pgbench through Shoal in transaction mode."""
import re
import subprocess

import pytest


@pytest.fixture(scope="module")
def bench_db(pg):
    pg.sql("CREATE DATABASE bench")
    r = subprocess.run(["pgbench", "-i", "-q", "-s", "1", "-h", pg.host, "-p", str(pg.port),
                        "-U", "postgres", "bench"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return "bench"


def pgbench(s, *args, db="db", timeout=60):
    r = subprocess.run(["pgbench", "-h", s.host, "-p", str(s.port), "-U", "postgres", *args, db],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def assert_clean_run(rc, out):
    assert rc == 0, out
    assert "error" not in out.lower(), out
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m is None or m.group(1) == "0", out
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    assert m and int(m.group(1)) > 0, out


@pytest.fixture
def bench_shoal(shoal, pg, bench_db):
    return shoal(databases={"db": {"dbname": bench_db, "pool_size": 4}},
                 settings={"pool_mode": "transaction", "query_wait_timeout": 20})


@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_pgbench_select_only(bench_shoal, protocol):
    assert_clean_run(*pgbench(bench_shoal, "-n", "-S", "-T", "3", "-c", "8", "-M", protocol))


@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_pgbench_tpcb(bench_shoal, protocol):
    assert_clean_run(*pgbench(bench_shoal, "-n", "-T", "3", "-c", "8", "-M", protocol))


def test_pgbench_initialize_through_shoal(shoal, pg):
    pg.sql("CREATE DATABASE bench_init")
    s = shoal(databases={"db": {"dbname": "bench_init", "pool_size": 2}},
              settings={"pool_mode": "transaction"})
    rc, out = pgbench(s, "-i", "-q", "-s", "1")
    assert rc == 0, out
    assert pg.sql("SELECT count(*) FROM pgbench_accounts", dbname="bench_init") == [(100000,)]
