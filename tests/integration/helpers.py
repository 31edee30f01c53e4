"""Utilities shared by the integration tests (no fixtures here; see conftest.py)."""
import os
import socket
import threading
import time
import urllib.error
import urllib.request


_used_ports = set()
_port_lock = threading.Lock()
# Ports 15000-29999, split between pytest-xdist's processes so that two never pick the same
# port between checking it and binding it; alone, a start that depends on the pid.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
_span = 15000 // max(_workers, 1)
_low = 15000 + _worker * _span
_high = _low + _span - 1
_next_port = [_low + (os.getpid() * 37) % _span]


def free_port():
    """A TCP port on 127.0.0.1 below 32768 that nobody is bound to right now."""
    with _port_lock:
        for _ in range(20000):
            port = _next_port[0]
            _next_port[0] = _low if port >= _high else port + 1
            if port in _used_ports:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port")


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until truthy; return its value or raise AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last=%r)" % (timeout, what, last))


def db_entry(pg, dbname="postgres", **kw):
    """A [databases] spec dict pointing at pg."""
    d = {"host": pg.host, "port": pg.port, "dbname": dbname}
    d.update(kw)
    return d



class BackendMonitor:
    """Samples the number of backends for usename (or a custom filter) every interval seconds
    from its own direct PostgreSQL connection, recording the maximum."""

    def __init__(self, pg, usenames, interval=0.02, max_seconds=60):
        self.pg = pg
        self.usenames = list(usenames) if isinstance(usenames, (list, tuple)) else [usenames]
        self.interval = interval
        self.max_seconds = max_seconds
        self.samples = []
        self.stop_event = threading.Event()
        self.error = None

    def _run(self):
        try:
            with self.pg.connect() as c:
                deadline = time.monotonic() + self.max_seconds
                while not self.stop_event.is_set() and time.monotonic() < deadline:
                    n = c.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        "'client backend' AND pid <> pg_backend_pid() AND usename = ANY(%s)",
                        (self.usenames,)).fetchone()[0]
                    self.samples.append(n)
                    self.sampling.set()
                    time.sleep(self.interval)
        except Exception as e:  # pragma: no cover - reported by the test
            self.error = e
        finally:
            self.sampling.set()

    def __enter__(self):
        """Returns once the first sample is taken, so that what the test does next is watched
        (on a loaded machine the monitor's own connection can take seconds)."""
        self.sampling = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.sampling.wait(30)
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(10)

    @property
    def max(self):
        return max(self.samples) if self.samples else None


def run_threads(fn, args_list, timeout=60):
    """Run fn(*args) in one thread each; return (results, errors) lists in order."""
    results = [None] * len(args_list)
    errors = [None] * len(args_list)

    def wrap(i, args):
        try:
            results[i] = fn(*args)
        except BaseException as e:
            errors[i] = e

    threads = [threading.Thread(target=wrap, args=(i, a), daemon=True)
               for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    assert hung == 0, "%d threads still running after %ss" % (hung, timeout)
    return results, errors


def sqlstate_of(exc):
    return getattr(exc, "sqlstate", None)


def primary_message(exc):
    diag = getattr(exc, "diag", None)
    msg = diag.message_primary if diag is not None else None
    return msg if msg else str(exc)


def error_text(exc):
    """Everything psycopg knows about an error (for FATAL errors followed by a close, psycopg
    3.1 reports 'consuming input failed: <server message>...' and no SQLSTATE)."""
    return str(exc)


def http_get(port, path):
    """GET http://127.0.0.1:port/path: (status, body text), also for error statuses."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
