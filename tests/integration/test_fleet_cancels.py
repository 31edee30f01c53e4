"""Fleets at scale (issue 20): three Shoal processes on one port (so_reuseport), 200 cancels of
pg_sleep(10) from clients spread across them, in parallel. Every cancel must end its own client's
query within 1 s, whichever process the kernel hands the CancelRequest to, and no other query may
be cancelled (bystanders waiting on an advisory lock must end normally)."""
import os

import pytest

from fleet_helpers import PROTOCOL_3_0, PROTOCOL_3_2, CancelRounds, key_issuer, startup
from helpers import free_port
from wire import Wire

CLIENTS = 60  # per round: 50 sleep and are cancelled, 10 are bystanders
ROUNDS = 4  # 4 x 50 = 200 cancels


def reuseport_fleet(shoal, tmp_path, n=3, **settings):
    """n processes on one TCP port, peer ids 1..n, each [peers] entry a process's own Unix
    socket directory (as PgBouncer documents for so_reuseport). Returns (port, instances)."""
    port = free_port()
    dirs = [str(tmp_path / ("p%d" % i)) for i in range(1, n + 1)]
    for d in dirs:
        os.mkdir(d)
    peers = "\n".join("%d = host=%s port=%d" % (i + 1, d, port) for i, d in enumerate(dirs))
    out = []
    for i, d in enumerate(dirs):
        st = {"pool_mode": "transaction", "listen_port": port, "so_reuseport": 1,
              "peer_id": i + 1, "unix_socket_dir": d}
        st.update(settings)
        out.append(shoal(databases={"db": {"dbname": "postgres", "pool_size": CLIENTS}},
                         settings=st, extra_ini="[peers]\n" + peers))
    return port, out


def run_cancel_rounds(pg, role, host, port, protocol, fleet):
    """CLIENTS logins at host:port, ROUNDS rounds of parallel cancels. Returns (cancels sent,
    keys issued per peer id, slowest cancel in seconds)."""
    clients = []
    for _ in range(CLIENTS):
        w = Wire(host, port, timeout=10)
        _, key = startup(w, role, "db", protocol)
        assert len(key[1]) == (4 if protocol == PROTOCOL_3_0 else 32)
        clients.append((w, key))
    issued = {}
    for _, (pid, key) in clients:
        issued[key_issuer(pid, key)] = issued.get(key_issuer(pid, key), 0) + 1
    locker = pg.connect()
    rounds = CancelRounds(clients, host, port, locker)
    sent = 0
    try:
        for n in range(ROUNDS):
            sent += rounds.round(n, lambda i, n=n: i % 6 == n)
    finally:
        rounds.close()
        locker.close()
        for w, _ in clients:
            w.close()
    return sent, issued, max(rounds.took)


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
