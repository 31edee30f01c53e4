"""Fleets at scale (issue 20): three Shoal processes on one port (so_reuseport), 200 cancels of
pg_sleep(10) from clients spread across them, in parallel. Every cancel must end its own client's
query within 1 s, whichever process the kernel hands the CancelRequest to, and no other query may
be cancelled (bystanders waiting on an advisory lock must end normally)."""
import os

import pytest

from fleet_helpers import PROTOCOL_3_0, PROTOCOL_3_2, run_cancel_rounds, start_fleet
from helpers import free_port


def reuseport_fleet(shoal, tmp_path, n=3, **settings):
    """n processes on one TCP port, peer ids 1..n, each [peers] entry a process's own Unix
    socket directory (as PgBouncer documents for so_reuseport). Returns (port, instances)."""
    port = free_port()
    dirs = [str(tmp_path / ("p%d" % i)) for i in range(1, n + 1)]
    for d in dirs:
        os.mkdir(d)
    peers = "\n".join("%d = host=%s port=%d" % (i + 1, d, port) for i, d in enumerate(dirs))
    own = [{"listen_port": port, "so_reuseport": 1, "peer_id": i + 1, "unix_socket_dir": d}
           for i, d in enumerate(dirs)]
    return port, start_fleet(shoal, peers, own, **settings)


@pytest.mark.parametrize("protocol", [PROTOCOL_3_0, PROTOCOL_3_2], ids=["3.0", "3.2"])
def test_200_cancels_across_three_processes_on_one_port(shoal, pg, role, tmp_path, protocol):
    port, fleet = reuseport_fleet(shoal, tmp_path)
    sent, issued, slowest = run_cancel_rounds(pg, role, "127.0.0.1", port, protocol, fleet)
    assert sent == 200
    assert sorted(issued) == [1, 2, 3], issued  # the kernel spread the clients over all three
    forwarded = sum(i.log().count("forwarded to peer") for i in fleet)
    # about 2 in 3 cancels land on a process that did not issue the key
    assert forwarded > 50, forwarded
    print("200 cancels, clients per process %r, %d forwarded to the issuer, slowest %.3fs"
          % (issued, forwarded, slowest))
