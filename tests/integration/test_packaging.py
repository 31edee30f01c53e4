"""Packaging: systemd's readiness protocol (Type=notify-reload), the install layout, the man
pages, the systemd unit, the container image definition and the Kubernetes manifests."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import SHOAL_BIN
from helpers import free_port
from test_first_run import clean_env, daemons  # noqa: F401 (fixture)


def recv_state(sock, want, timeout=10):
    """The next datagram holding `want` (a NAME=value line); earlier ones are returned too."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        seen.append(msg)
        if want in msg.splitlines():
            return msg, seen
    raise AssertionError("no %r from shoal; got %r" % (want, seen))


def test_sd_notify_ready_reloading_and_stopping(daemons, pg, tmp_path):  # noqa: F811
    """As systemd sees a Type=notify-reload service: READY=1 once listening, RELOADING=1 with
    MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on SIGTERM."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        port = free_port()
        url = "postgres://nobody@%s:%d/postgres" % (pg.host, pg.port)
        d = daemons([], clean_env(DATABASE_URL=url, SHOAL_LISTEN_PORT=port,
                                  SHOAL_UNIX_SOCKET_DIR=str(tmp_path), NOTIFY_SOCKET=path), port)
        msg, _ = recv_state(sock, "READY=1")
        assert "MAINPID=%d" % d.proc.pid in msg.splitlines()
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # listening by then
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        d.proc.send_signal(signal.SIGHUP)
        msg, _ = recv_state(sock, "RELOADING=1")
        usec = [int(line.split("=", 1)[1]) for line in msg.splitlines()
                if line.startswith("MONOTONIC_USEC=")]
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert usec and before <= usec[0] <= after, (msg, before, after)
        msg, _ = recv_state(sock, "READY=1")
        assert "STATUS=configuration reloaded" in msg.splitlines()
        d.proc.send_signal(signal.SIGTERM)
        recv_state(sock, "STOPPING=1")
        d.proc.wait(15)
    finally:
        sock.close()
        os.unlink(path)


# ---- meson install: the layout, the man pages, the unit, pkg-config ------------------------

BUILD_DIR = os.path.dirname(os.path.abspath(SHOAL_BIN))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`meson install --destdir` of the build SHOAL_BIN comes from: {relative path: full path}."""
    if not os.path.exists(os.path.join(BUILD_DIR, "meson-private")):
        pytest.skip("%s is not a meson build directory" % BUILD_DIR)
    dest = str(tmp_path_factory.mktemp("destdir"))
    r = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--no-rebuild", "--quiet",
                        "--destdir", dest], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = {}
    for root, _, names in os.walk(dest):
        for n in names:
            full = os.path.join(root, n)
            files[os.path.relpath(full, dest)] = full
    return dest, files


def find(files, suffix):
    hits = [full for rel, full in files.items() if rel.endswith(suffix)]
    assert len(hits) == 1, "%s: %r" % (suffix, sorted(files))
    return hits[0]


def test_install_lays_out_binary_library_headers_pkgconfig_man_unit_and_sample(installed):
    _, files = installed
    for suffix in ("bin/shoal", "include/shoal/pool.h", "pkgconfig/libshoal.pc", "libshoal.a",
                   "man/man1/shoal.1", "man/man5/shoal.ini.5", "man/man3/libshoal.3",
                   "systemd/system/shoal.service", "doc/shoal/examples/shoal.ini",
                   "sysusers.d/shoal.conf"):
        find(files, suffix)
    assert any(re.search(r"lib/.*libshoal\.so\.[0-9.]+$", rel) for rel in files), sorted(files)
    assert os.access(find(files, "bin/shoal"), os.X_OK)


@pytest.mark.skipif(not shutil.which("man"), reason="man is not installed")
@pytest.mark.parametrize("page,words", [
    ("man1/shoal.1", ["SYNOPSIS", "--check", "SIGHUP", "NOTIFY_SOCKET"]),
    ("man5/shoal.ini.5", ["SETTINGS", "listen_port", "pool_mode", "strict_config"]),
    ("man3/libshoal.3", ["shoal_pool_with_retry", "pkg-config"]),
])
def test_man_pages_render(installed, page, words):
    _, files = installed
    r = subprocess.run(["man", "-l", find(files, "man/" + page)], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, MANWIDTH="100",
                                                       MAN_KEEP_FORMATTING="0", PAGER="cat"))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr.lower(), r.stderr
    text = re.sub(".\x08", "", r.stdout)  # overstrike bold and underline
    for w in words:
        assert w in text, "%s: %r missing" % (page, w)


def test_unit_is_notify_with_reload_user_hardening_and_nofile(installed):
    _, files = installed
    text = open(find(files, "systemd/system/shoal.service")).read()
    keys = dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))
    assert keys["Type"] in ("notify-reload", "notify")
    if keys["Type"] == "notify":  # systemd < 253: the reload is a SIGHUP all the same
        assert keys["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert keys["User"] == "shoal" and int(keys["LimitNOFILE"]) >= 4096
    for k in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "RestrictAddressFamilies",
              "SystemCallFilter", "CapabilityBoundingSet"):
        assert k in keys, k
    assert keys["ExecStart"].split()[0].endswith("/bin/shoal")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_unit_passes_systemd_analyze_verify(installed, tmp_path):
    dest, files = installed
    text = open(find(files, "systemd/system/shoal.service")).read()
    exe = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    unit = tmp_path / "shoal.service"  # the binary where it was installed, not yet in /usr
    unit.write_text(text.replace("ExecStart=" + exe, "ExecStart=" + dest + exe))
    man = os.path.dirname(os.path.dirname(find(files, "man/man1/shoal.1")))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, MANPATH=man))
    assert r.returncode == 0 and "shoal.service" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_sample_configuration_checks(installed, tmp_path):
    _, files = installed
    users = tmp_path / "userlist.txt"
    users.write_text('"shoal" "secret"\n')
    r = subprocess.run([SHOAL_BIN, "--check", find(files, "doc/shoal/examples/shoal.ini")],
                       capture_output=True, text=True, timeout=20,
                       env=clean_env(SHOAL_AUTH_FILE=users))
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stdout + r.stderr


@pytest.mark.skipif(not shutil.which("pkg-config") or not shutil.which("cc"),
                    reason="no pkg-config or cc")
@pytest.mark.parametrize("where", ["build tree", "installed"])
def test_pkg_config_builds_the_example(installed, tmp_path, where):
    dest, files = installed
    if where == "build tree":
        pcdir = os.path.join(BUILD_DIR, "meson-uninstalled")
    else:  # the installed .pc, its prefix moved to where --destdir put it
        pc = open(find(files, "pkgconfig/libshoal.pc")).read()
        prefix = re.search(r"^prefix=(.*)$", pc, re.M).group(1)
        pcdir = str(tmp_path)
        (tmp_path / "libshoal.pc").write_text(
            pc.replace("prefix=" + prefix, "prefix=" + dest + prefix, 1))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libshoal"], env=env,
                           capture_output=True, text=True, timeout=20)
    assert flags.returncode == 0, flags.stderr
    out = str(tmp_path / "pool_example")
    r = subprocess.run(["cc", "-o", out, os.path.join(REPO, "examples", "pool_example.c"),
                        *flags.stdout.split()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert os.access(out, os.X_OK)


# ---- the container image definition and the Kubernetes manifests ---------------------------

PACKAGING = os.path.join(REPO, "packaging")
MANIFEST = os.path.join(PACKAGING, "kubernetes", "shoal.yaml")
FLEET_MANIFEST = os.path.join(PACKAGING, "kubernetes", "shoal-fleet.yaml")


def manifests(path=MANIFEST):
    """The documents of a manifest by kind; a Service by "Service/<name>" too."""
    yaml = pytest.importorskip("yaml")
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    out = {d["kind"]: d for d in docs}
    out.update({"Service/" + d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"})
    return out


def ini_value(text, key):
    m = re.search(r"^\s*%s\s*=\s*(\S+)" % re.escape(key), text, re.M)
    assert m, key
    return m.group(1)


@pytest.mark.skipif(not shutil.which("yamllint"), reason="yamllint is not installed")
@pytest.mark.parametrize("path", [MANIFEST, FLEET_MANIFEST], ids=["single", "fleet"])
def test_manifests_pass_yamllint(path):
    r = subprocess.run(["yamllint", "-s", "-d", "{extends: default, rules: {line-length: "
                        "{max: 100}, document-start: disable}}", path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_manifests_probe_drain_and_match_each_other():
    k = manifests()
    assert set(k) == {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget",
                      "Service/shoal"}
    ini = k["ConfigMap"]["data"]["shoal.ini"]
    labels = k["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for sel in (k["Deployment"]["spec"]["selector"]["matchLabels"],
                k["Service"]["spec"]["selector"],
                k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert sel.items() <= labels.items(), sel
    pod = k["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["postgres"] == int(ini_value(ini, "listen_port"))
    assert ports["http"] == int(ini_value(ini, "http_port"))
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    for probe in (c["readinessProbe"], c["livenessProbe"]):
        assert probe["httpGet"]["port"] in (ports["http"], "http")
    targets = {p["targetPort"] for p in k["Service"]["spec"]["ports"]}
    assert targets <= set(ports) | set(ports.values()), targets
    pre = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    wait = int(re.search(r"sleep (\d+);", pre).group(1))
    assert "kill -INT 1" in pre and "kill -0 1" in pre  # drains, and waits for the end
    shutdown = int(ini_value(ini, "shutdown_timeout"))
    assert pod["terminationGracePeriodSeconds"] >= wait + shutdown + 2, (pre, shutdown)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert k["PodDisruptionBudget"]["spec"]["minAvailable"] < k["Deployment"]["spec"]["replicas"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert ini_value(ini, "auth_file").rsplit("/", 1)[0] in mounts
    secret = k["Secret"]["stringData"]
    assert "userlist.txt" in secret
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in c["env"]}
    assert env["APP_DB_PASSWORD"] in secret and "${APP_DB_PASSWORD}" in ini


def fleet_command(k, shoal_bin="/usr/bin/shoal"):
    """The fleet pod's shell line, with the image's shoal replaced by shoal_bin."""
    (c,) = k["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    sh, flag, line = c["command"]
    assert (sh, flag) == ("/bin/sh", "-c") and "/usr/bin/shoal" in line, c["command"]
    return [sh, flag, line.replace("/usr/bin/shoal", shoal_bin)]


def test_fleet_manifests_discover_peers_share_pools_and_drain_like_the_single_one():
    k, single = manifests(FLEET_MANIFEST), manifests()
    assert set(k) == {"ConfigMap", "Secret", "StatefulSet", "Service", "Service/shoal",
                      "Service/shoal-peers", "PodDisruptionBudget"}
    ini = k["ConfigMap"]["data"]["shoal.ini"]
    sts, peers = k["StatefulSet"]["spec"], k["Service/shoal-peers"]["spec"]
    labels = sts["template"]["metadata"]["labels"]
    for sel in (sts["selector"]["matchLabels"], peers["selector"],
                k["Service/shoal"]["spec"]["selector"],
                k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert sel.items() <= labels.items(), sel
    # discovery: a headless Service that lists pods that are not ready (draining) too
    assert peers["clusterIP"] == "None" and peers["publishNotReadyAddresses"] is True
    assert sts["serviceName"] == "shoal-peers"
    assert ini_value(ini, "peer_discovery_dns").startswith("shoal-peers.${POD_NAMESPACE}.")
    (c,) = sts["template"]["spec"]["containers"]
    env = {e["name"]: e["valueFrom"] for e in c["env"]}
    assert env["POD_NAMESPACE"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert "SHOAL_PEER_ID=" in fleet_command(k)[2]
    # pool sizes are fleet totals over as many instances as there are pods
    assert int(ini_value(ini, "fleet_size")) == sts["replicas"]
    assert ini_value(ini, "pool_size_scope") == "fleet"
    # each pod drains as the single Deployment's do
    one = single["Deployment"]["spec"]["template"]["spec"]
    pod = sts["template"]["spec"]
    assert c["lifecycle"] == one["containers"][0]["lifecycle"]
    assert pod["terminationGracePeriodSeconds"] == one["terminationGracePeriodSeconds"]
    assert ini_value(ini, "shutdown_timeout") == ini_value(
        single["ConfigMap"]["data"]["shoal.ini"], "shutdown_timeout")
    assert pod["securityContext"] == one["securityContext"]
    assert c["securityContext"] == one["containers"][0]["securityContext"]
    assert k["PodDisruptionBudget"]["spec"]["maxUnavailable"] < sts["replicas"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private /etc/hosts")
def test_fleet_configmap_pods_take_their_ids_and_route_a_cancel(
        daemons, pg, role_db, tmp_path):  # noqa: F811
    """The fleet ConfigMap run by the StatefulSet's command as pods shoal-0..2 would run it
    (each on its own loopback address, the headless Service's name in a private /etc/hosts):
    each takes peer_id ordinal + 1 and a third of the pool sizes, and a cancel sent to another
    pod reaches the pod that issued the key."""
    from fleet_helpers import SLEEP, private_hosts_file, read_until_ready, startup
    from wire import Wire, query_message, send_cancel
    role, db = role_db
    k = manifests(FLEET_MANIFEST)
    ini = re.sub(r"^app = .*$", "", k["ConfigMap"]["data"]["shoal.ini"], flags=re.M)
    path = tmp_path / "shoal.ini"
    path.write_text(ini)
    users = tmp_path / "userlist.txt"
    users.write_text('"%s" "secret"\n' % role)
    addrs = ["127.0.0.%d" % (i + 1) for i in range(k["StatefulSet"]["spec"]["replicas"])]
    pre = private_hosts_file(tmp_path / "hosts", "".join(
        "%s shoal-peers.test.svc.cluster.local\n" % a for a in addrs))
    port, http = free_port(), free_port()
    command = fleet_command(k, SHOAL_BIN)
    command[2] = command[2].replace("/etc/shoal/shoal.ini", str(path))
    pods = []
    for i, addr in enumerate(addrs):
        sockets = tmp_path / ("pod%d" % i)
        sockets.mkdir()
        env = clean_env(HOSTNAME="shoal-%d" % i, POD_NAMESPACE="test", SHOAL_LISTEN_ADDR=addr,
                        SHOAL_LISTEN_PORT=port, SHOAL_HTTP_ADDR=addr, SHOAL_HTTP_PORT=http,
                        SHOAL_AUTH_FILE=users, SHOAL_UNIX_SOCKET_DIR=sockets,
                        SHOAL_AUTH_TYPE="trust", SHOAL_ADMIN_USERS=role,
                        SHOAL_DATABASES="app=postgres://%s@%s:%d/%s" % (role, pg.host, pg.port,
                                                                       db))
        pods.append(daemons([], env, port, command=command, addr=addr,
                            preexec_fn=pre).wait_listening())
    for i, d in enumerate(pods):
        with d.connect("pgbouncer", user=role) as a:
            conf = {r[0]: r[1] for r in a.execute("SHOW CONFIG").fetchall()}
            assert conf["peer_id"] == str(i + 1), conf["peer_id"]
            dbs = {r[0]: r for r in a.execute("SHOW DATABASES").fetchall()}
            assert dbs["app"][5] == 20, dbs["app"]  # pool_size: 60 across 3 pods
    w = Wire(addrs[0], port)
    _, (pid, key) = startup(w, role, "app", 3 << 16)
    w.send(query_message(SLEEP))
    assert w.read_msg()[0] == b"N"  # running
    send_cancel(addrs[2], port, pid, key, 5)  # to pod 2, which forwards it to pod 0
    errors, took = read_until_ready(w, 12)
    assert [e.get("C") for e in errors] == ["57014"] and took < 5, (errors, took)
    assert "sent to the 3 instance(s) of shoal-peers.test.svc.cluster.local" in pods[2].output()
    w.close()


def test_containerfile_is_debian_and_runs_as_non_root():
    text = open(os.path.join(PACKAGING, "Containerfile")).read()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f.startswith("debian:") for f in froms), froms
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    uid = int(users[-1].split(":")[0])
    assert manifests()["Deployment"]["spec"]["template"]["spec"]["securityContext"][
        "runAsUser"] == uid
    assert "COPY packaging/container/shoal.ini /etc/shoal/shoal.ini" in text
    ignored = open(os.path.join(REPO, ".dockerignore")).read().split()
    assert "build*/" in ignored and ".git" in ignored  # the context stays small


def http_status(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("config", ["container", "configmap"])
def test_image_and_configmap_configurations_serve_and_the_prestop_drains(
        config, daemons, pg, role_db, tmp_path):  # noqa: F811
    """Each shipped configuration, as the pod would run it (only the addresses moved to
    loopback): it serves, /health/ready turns 503 once the preStop hook's SIGINT arrives, an
    open transaction still commits, and the hook's wait ends when Shoal has exited, with 0."""
    role, db = role_db
    if config == "container":
        ini = open(os.path.join(PACKAGING, "container", "shoal.ini")).read()
    else:
        ini = manifests()["ConfigMap"]["data"]["shoal.ini"]
        ini = re.sub(r"^app = .*$", "", ini, flags=re.M)
    path = tmp_path / "shoal.ini"
    path.write_text(ini)
    users = tmp_path / "userlist.txt"
    users.write_text('"%s" "secret"\n' % role)
    port, http = free_port(), free_port()
    env = clean_env(SHOAL_LISTEN_ADDR="127.0.0.1", SHOAL_HTTP_ADDR="127.0.0.1",
                    SHOAL_LISTEN_PORT=port, SHOAL_HTTP_PORT=http, SHOAL_AUTH_FILE=users,
                    SHOAL_UNIX_SOCKET_DIR=tmp_path, SHOAL_AUTH_TYPE="trust",
                    SHOAL_DATABASES="app=postgres://%s@%s:%d/%s" % (role, pg.host, pg.port, db))
    d = daemons([str(path)], env, port).wait_listening()
    assert http_status(http, "/health/ready") == 200
    assert http_status(http, "/health/live") == 200
    conn = d.connect("app", user=role)
    conn.autocommit = False
    conn.execute("SELECT 1")  # a transaction is open
    pre = " ".join(manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0][
        "lifecycle"]["preStop"]["exec"]["command"][2:])
    hook = re.sub(r"^sleep \d+;", "", pre, count=1)  # no endpoints to wait for here
    hook = re.sub(r"(kill -\S+) 1\b", r"\1 %d" % d.proc.pid, hook)
    reaper = threading.Thread(target=d.proc.wait)  # Shoal is pid 1's stand-in: reaped at exit
    reaper.start()
    hooked = subprocess.Popen(["/bin/sh", "-c", hook])
    deadline = time.monotonic() + 10
    while http_status(http, "/health/ready") != 503:
        assert time.monotonic() < deadline, "still ready after the hook's signal"
        time.sleep(0.05)
    assert hooked.poll() is None  # the hook waits while the transaction is open
    conn.execute("SELECT 2")
    conn.commit()
    conn.close()
    assert hooked.wait(20) == 0
    reaper.join(5)
    assert d.proc.returncode == 0


def engine_with_debian():
    """docker or podman whose daemon answers and that already has both Debian base images
    (the build must not depend on pulling from a registry); None otherwise."""
    for engine in ("podman", "docker"):
        if not shutil.which(engine):
            continue
        ok = all(subprocess.run([engine, "image", "inspect", image], capture_output=True,
                                timeout=30).returncode == 0
                 for image in ("debian:bookworm", "debian:bookworm-slim"))
        if ok:
            return engine
    return None


def test_image_builds_and_runs_as_non_root(tmp_path):
    engine = engine_with_debian()
    if not engine:
        pytest.skip("no container engine with the Debian base images here")
    tag = "shoal-test-%d" % os.getpid()
    r = subprocess.run([engine, "build", "-f", os.path.join(PACKAGING, "Containerfile"), "-t",
                        tag, REPO], capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    try:
        r = subprocess.run([engine, "run", "--rm", "--entrypoint", "/bin/sh", tag, "-c",
                            "id -u && shoal --version"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        uid, version = r.stdout.split("\n")[:2]
        assert uid == "10001" and version.startswith("Shoal ")
    finally:
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True, timeout=120)


# ---- the settings reference that shoal.ini(5) is made from ---------------------------------


def settings_table():
    """docs/configuration.md's settings table: {setting: row}, and whether it is one table."""
    lines = open(os.path.join(REPO, "docs", "configuration.md")).read().splitlines()
    start = lines.index("| setting | default | meaning |")
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        assert len(cells) == 3, "a row of the settings table is broken: %r" % line
        for name in re.findall(r"`([a-z_]+)`", cells[0]):
            rows[name] = line
    return rows


def test_every_setting_is_in_the_reference_table():
    """The settings table is one table (no prose between its rows) and names every setting
    that `shoal --check` prints, so shoal.ini(5), made from it, does too."""
    r = subprocess.run([SHOAL_BIN, "--check"], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("[shoal]", 1)[1].split("\n[", 1)[0]
    names = re.findall(r"^([a-z_]+) =", section, re.M)
    assert len(names) > 50, r.stdout
    rows = settings_table()
    missing = [n for n in names if n not in rows]
    assert not missing, "settings missing from docs/configuration.md's table: %s" % missing


@pytest.mark.skipif(not shutil.which("systemd-sysusers"), reason="no systemd-sysusers")
def test_sysusers_file_makes_the_units_user(installed, tmp_path):
    _, files = installed
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = subprocess.run(["systemd-sysusers", "--root", str(root), "--dry-run",
                        find(files, "sysusers.d/shoal.conf")], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "Creating user 'shoal'" in r.stdout + r.stderr, r.stdout + r.stderr
