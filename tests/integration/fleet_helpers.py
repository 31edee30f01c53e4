"""Helpers for the fleet tests (issue 20): logins with a chosen protocol version, cancel requests
with keys of any length, which instance issued a key, and many clients cancelling at once."""
import ctypes
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cancel_helpers import wait_running
from wire import CANCEL_REQUEST, Wire, parse_fields, query_message, send_cancel

PROTOCOL_3_0 = 3 << 16
PROTOCOL_3_2 = (3 << 16) | 2
PROTOCOL_3_3 = (3 << 16) | 3

CLIENTS = 60  # per round: 50 sleep and are cancelled, 10 are bystanders
ROUNDS = 4  # 4 x 50 = 200 cancels


def startup(w, user, database, protocol):
    """Log in with the given protocol code. Returns (messages before ReadyForQuery as
    [(type, body)], (pid, key bytes))."""
    body = struct.pack("!i", protocol)
    for k, v in (("user", user), ("database", database)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    w.send(struct.pack("!i", len(body) + 4) + body)
    seen, key = [], None
    while True:
        mtype, mbody = w.read_msg()
        seen.append((mtype, mbody))
        if mtype == b"E":
            raise AssertionError("login failed: %r" % parse_fields(mbody))
        if mtype == b"K":
            key = (struct.unpack("!i", mbody[:4])[0], mbody[4:])
        if mtype == b"Z":
            return seen, key


def start_fleet(shoal, peers, per_instance, **settings):
    """One instance per dict of per_instance (its listen_port, peer_id...), each in transaction
    mode with settings, database db on postgres and [peers] peers. Returns the instances."""
    out = []
    for own in per_instance:
        st = {"pool_mode": "transaction", **own, **settings}
        out.append(shoal(databases={"db": {"dbname": "postgres", "pool_size": CLIENTS}},
                         settings=st, extra_ini="[peers]\n" + peers))
    return out


def cancel_at(host, port, pid, key, timeout=5):
    """A CancelRequest with a key of any length; returns once the pooler closed the socket."""
    send_cancel(host, port, pid, key, timeout)


def key_issuer(pid, key):
    """The peer id a key names: a 3.0 key in PgBouncer's layout (the pid's 2nd and 3rd bytes),
    a 3.2 key in its trailer ('S', id, hops)."""
    if len(key) == 4:
        return ((pid >> 16) & 0xff) | ((pid >> 8) & 0xff) << 8
    assert key[28:29] == b"S", key
    return struct.unpack("!H", key[29:31])[0]


# A statement that says it runs (a notice is flushed at once) and then sleeps for 10 s.
SLEEP = "DO $$BEGIN RAISE NOTICE 'running'; PERFORM pg_sleep(10); END$$"
# One that waits for an advisory lock the test holds, then ends normally.
WAIT_LOCK = "DO $$BEGIN RAISE NOTICE 'running'; PERFORM pg_advisory_xact_lock(%d); END$$"


def read_until_ready(w, timeout):
    """Messages up to ReadyForQuery: ([error fields], seconds taken)."""
    t0 = time.monotonic()
    w.sock.settimeout(timeout)
    errors = []
    while True:
        mtype, body = w.read_msg()
        if mtype == b"E":
            errors.append(parse_fields(body))
        elif mtype == b"Z":
            return errors, time.monotonic() - t0




def private_hosts_file(path, text):
    """A preexec_fn giving the child its own /etc/hosts (a private mount namespace: root only):
    a name that resolves to several loopback addresses, as a headless Service does."""
    path = str(path)
    with open(path, "w") as f:
        f.write(text)
    libc = ctypes.CDLL(None, use_errno=True)

    def pre():
        if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
            raise OSError(ctypes.get_errno(), "unshare")
        if libc.mount(None, b"/", None, 0x4000 | 0x40000, None) != 0:  # MS_REC | MS_PRIVATE
            raise OSError(ctypes.get_errno(), "mount private")
        if libc.mount(path.encode(), b"/etc/hosts", None, 0x1000, None) != 0:  # MS_BIND
            raise OSError(ctypes.get_errno(), "bind /etc/hosts")
    return pre


class CancelRounds:
    """Clients (Wire, (pid, key)) that, round after round, all start a statement at once: most
    run SLEEP and are cancelled in parallel (each by its own key, sent to host:port, i.e. to
    whichever instance takes the connection), the others (bystanders) wait for an advisory lock
    held by `locker` and must end normally once it is released: a misrouted cancel would hit
    one of them, or leave a sleeping client uncancelled."""

    def __init__(self, clients, host, port, locker, lock_base=7100, threads=50):
        self.clients = clients
        self.host, self.port = host, port
        self.locker = locker  # a direct PostgreSQL connection (autocommit)
        self.lock_base = lock_base
        self.pool = ThreadPoolExecutor(max_workers=threads)
        self.took = []  # seconds from a cancel's send to its client's ErrorResponse
        self.lock = threading.Lock()

    def _cancel_one(self, client):
        w, (pid, key) = client
        t0 = time.monotonic()
        s = socket.create_connection((self.host, self.port), timeout=5)
        s.sendall(struct.pack("!iii", 12 + len(key), CANCEL_REQUEST, pid) + key)
        errors, _ = read_until_ready(w, 12)
        took = time.monotonic() - t0
        try:
            s.recv(1)
        except OSError:
            pass
        s.close()
        return errors, took

    def round(self, n, bystander):
        """Round n; bystander(i) says whether client i is a bystander. Returns the number of
        cancels sent."""
        lock = self.lock_base + n
        self.locker.execute("SELECT pg_advisory_lock(%s)", (lock,))
        roles = [bystander(i) for i in range(len(self.clients))]
        for (w, _), by in zip(self.clients, roles):
            w.send(query_message(WAIT_LOCK % lock if by else SLEEP))
        for w, _ in self.clients:
            wait_running(w)
        targets = [c for c, by in zip(self.clients, roles) if not by]
        results = list(self.pool.map(self._cancel_one, targets))
        for i, (errors, took) in enumerate(results):
            assert [e.get("C") for e in errors] == ["57014"], (n, i, errors)
            assert took < 1.0, "round %d: cancel %d took %.2fs" % (n, i, took)
        self.took += [t for _, t in results]
        self.locker.execute("SELECT pg_advisory_unlock(%s)", (lock,))
        for (w, _), by in zip(self.clients, roles):
            if by:
                errors, _ = read_until_ready(w, 5)
                assert errors == [], "round %d: a bystander was cancelled: %r" % (n, errors)
        return len(targets)

    def close(self):
        self.pool.shutdown()


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
