"""What bench.py and workers.py share: paths, ports, running as the postgres user, and a
throwaway PostgreSQL cluster."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGBIN = "/usr/lib/postgresql/15/bin"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return port if port < 32768 else 20000 + port % 10000


def as_pg_user(cmd):
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--"] + cmd


class Postgres:
    """A throwaway cluster (initdb into a temp dir, a free loopback port), pgbench-initialized.
    opts: the server options on top of the port and socket directory."""

    def __init__(self, scale, opts="-c max_connections=200 -c fsync=off"):
        self.dir = tempfile.mkdtemp(prefix="shoal-bench-pg-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        subprocess.run(as_pg_user([PGBIN + "/initdb", "-A", "trust", "-U", "postgres",
                                   "-D", self.data]), check=True, stdout=subprocess.DEVNULL)
        subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", self.data, "-l",
                                   self.data + "/log", "-w", "-o",
                                   "-p %d -k %s %s" % (self.port, self.dir, opts), "start"]),
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), "-h", "127.0.0.1",
                        "-p", str(self.port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run(as_pg_user([PGBIN + "/pg_ctl", "-D", self.data, "-m", "immediate",
                                   "stop"]), stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)
