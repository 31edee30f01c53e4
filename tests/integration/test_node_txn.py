"""Node drivers that prepare statements, through transaction mode (tests/clients/node/txn_client.js):
node-postgres named queries and postgres.js (prepares every query by default)."""
import json
import os
import subprocess

import pytest

from helpers import db_entry
from test_node_pg import CLIENT_DIR, NODE, node_env, require_node

SCRIPT = os.path.join(CLIENT_DIR, "txn_client.js")


def run_txn_client(s, scenario):
    require_node()
    r = subprocess.run([NODE, SCRIPT, scenario, "postgresql://postgres@%s:%d/db" % (s.host, s.port)],
                       cwd=CLIENT_DIR, env=node_env(), capture_output=True, text=True, timeout=60)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert lines, "no output (rc %d)\n%s" % (r.returncode, r.stderr[-3000:])
    out = json.loads(lines[-1])
    if out.get("error") and "Cannot find module" in out["error"]:
        pytest.fail("npm module missing: run scripts/deps.sh (npm ci in tests/clients/node)\n%s"
                    % out["error"], pytrace=False)
    return r.returncode, out


@pytest.mark.parametrize("scenario", ["pg-named", "postgres-js"])
@pytest.mark.parametrize("cache", [200, 3])
def test_node_driver_prepares_through_transaction_mode(shoal, pg, scenario, cache):
    s = shoal(databases={"db": db_entry(pg, pool_size=3)},
              settings={"pool_mode": "transaction", "query_wait_timeout": 30,
                        "max_prepared_statements": cache})
    rc, out = run_txn_client(s, scenario)
    assert rc == 0 and out["ok"], out
    assert out["queries"] >= 20 * 40 * 4
    assert "pinned" not in s.log()
    if cache == 3:  # the driver's statements did go through the cache and were evicted
        assert "evicting prepared statement" in s.log()
