"""The cluster-launcher files: schema checks, and `ray up` / `ray submit` / `ray down` for real.

The slow test plays a one-node on-premises cluster on this machine: a private sshd on
127.0.0.1 (own host key, own authorized_keys, own port) stands in for the head, and a
cluster file derived from ``cluster/cluster.yaml`` points Ray's local provider at it.
What makes that safe on a machine shared with other Ray users (other tests, other people):

* The "node" has its own home: sshd sets ``HOME`` to a temporary folder (``SetEnv``), so
  ``~/emodna-sweep``, ``~/ray_bootstrap_config.yaml`` and ``~/run.py`` land there, and
  the login shell reads that home's ``.bashrc`` (written here), not the real one.
* Ray's temporary root is private (``RAY_TMPDIR`` in that ``.bashrc``): session folders,
  the ``ray_current_cluster`` file that ``ray.init(address="auto")`` reads, and the local
  provider's state files. The launching side gets its own ``RAY_TMPDIR`` and ``TMPDIR``
  (Ray's config cache ``ray-config-*`` and the bootstrap config are written there).
* ``ray stop`` stops every Ray process on the machine, and ``ray down`` runs a hard-coded
  ``ray stop`` on the head (so does the first head start command). In the node's
  ``.bashrc`` a ``ray`` shell function turns ``ray stop`` into a stop of the processes whose
  command line holds this cluster's ``RAY_TMPDIR``, and their children.
* Ray's cluster file has no SSH port setting (``auth`` takes no ``ssh_port``), and the real
  ``~/.ssh/config`` is left alone: ``auth.ssh_proxy_command`` runs a tiny relay to the port.
  Ray's SSH runner already passes ``StrictHostKeyChecking=no`` and
  ``UserKnownHostsFile=/dev/null``, so no known_hosts file is touched.
* GCS, node manager, object manager, client server and dashboard get free ports; the head
  start command of cluster.yaml is kept and these flags are appended (the last one wins).

The project is not reinstalled (``pip install -e`` would re-point this machine's editable
install at the synced copy): the node's Python is this one, and the setup command checks
that the login shell's ``python`` imports ``emodna`` and ``sweep``, which is what
``ray submit`` needs, since it copies only the script to ``~/run.py``.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_DIR = ROOT / "cluster"
CLUSTER_FILES = ["cluster.yaml", "aws.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER_DIR / name).read_text())


# ---------------------------------------------------------------------------------------
# Fast checks of both files


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_file_is_valid_for_ray(name):
    """Ray fills in its defaults and its schema accepts the result (what `ray up` does first)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(load(name))
    validate_config(prepared)
    # Nothing of ours was replaced by a provider default.
    assert prepared["setup_commands"][-1:] == load(name)["setup_commands"][-1:]
    assert prepared["head_start_ray_commands"] == load(name)["head_start_ray_commands"]


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_file_mounts_exist_from_repo_root(name):
    """Relative local paths resolve against the current directory: the repo root."""
    for remote, local in load(name)["file_mounts"].items():
        if local.startswith("~"):
            continue  # the Ray token: made by `ray get-auth-token --generate`
        assert (ROOT / local).exists(), f"{name}: file_mounts {remote}: {local} is missing"
    mounted = set(load(name)["file_mounts"])
    assert "~/emodna-sweep/pyproject.toml" in mounted and "~/emodna-sweep/README.md" in mounted


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_file_dashboard_local_and_token_auth(name):
    config = load(name)
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config[key] if "ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start), key
    assert "~/.ray/auth_token" in config["file_mounts"]
    assert any("-e ~/emodna-sweep" in c for c in config["setup_commands"])


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_file_holds_no_secret(name):
    text = (CLUSTER_DIR / name).read_text()
    for word in ("aws_secret_access_key", "aws_access_key_id", "password", "BEGIN ", "AKIA"):
        assert word.lower() not in text.lower(), f"{name} mentions {word!r}"
    auth = load(name)["auth"]
    assert set(auth) <= {"ssh_user", "ssh_private_key"}


# ---------------------------------------------------------------------------------------
# The real thing: ray up, ray submit, ray down against a private sshd

# `ray stop`, scoped: SIGTERM the processes whose command line contains the marker (this
# cluster's RAY_TMPDIR) and all their descendants (Ray workers rename themselves
# "ray::IDLE" and lose the marker, but they are the raylet's children); SIGKILL what is
# left after a grace period. Never this process nor its ancestors.
STOP_SCRIPT = r"""
import os, signal, sys, time

marker = sys.argv[1].encode()
if len(marker) < 8:
    sys.exit("refusing a short marker")

def table():
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        procs[int(pid)] = (ppid, cmd)
    return procs

def targets():
    procs = table()
    mine, pid = set(), os.getpid()
    while pid > 1 and pid not in mine:
        mine.add(pid)
        pid = procs.get(pid, (1, b""))[0]
    found = {p for p, (_, cmd) in procs.items() if marker in cmd}
    children = {}
    for p, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(p)
    todo = list(found)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found - mine

def stop(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + 10
    while time.time() < deadline and pids & targets():
        time.sleep(0.2)
    left = pids & targets()
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return len(left)

# Ray's own order (as `ray stop`): the raylet and its children, then the rest, GCS last.
found = targets()
procs = table()

def exe(pid):
    return procs.get(pid, (0, b""))[1].split(b"\0")[0]

raylets = {p for p in found if exe(p).endswith(b"/raylet")}
gcs = {p for p in found if exe(p).endswith(b"/gcs_server")}
killed = stop(raylets | {p for p in found if procs.get(p, (0,))[0] in raylets})
killed += stop(targets() - gcs)
killed += stop(targets())
print(f"scoped ray stop: {len(found)} processes stopped ({killed} killed)")
"""

# ssh's ProxyCommand: connect to host:port and relay stdin/stdout (reaches sshd's port).
RELAY_SCRIPT = r"""
import os, socket, sys, threading

sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))

def upstream():
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)

threading.Thread(target=upstream, daemon=True).start()
while data := sock.recv(65536):
    os.write(1, data)
"""

BASHRC = """\
# The login environment of the test's node (written by tests/test_cluster.py). No output:
# rsync runs through this shell too.
export PATH="{bindir}:$PATH"
export RAY_TMPDIR="{ray_tmp}"
export RAY_USAGE_STATS_ENABLED=0
ray() {{
    if [ "$1" = stop ]; then
        "{python}" "{stop_script}" "$RAY_TMPDIR"
    else
        command ray "$@"
    fi
}}
"""

TINY_SPACE = """\
method: emodna
metric: target_uar
mode: max
epochs: 1
seeds: [0]
scenarios:
  list:
    - {source: EMODB, target: CASIA, task: arousal}
fixed:
  batch_size: 64
params:
  tau_p: {type: float, low: 0.001, high: 1.0, log: true}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"sshd did not listen on 127.0.0.1:{port}: {log.read_text()[-2000:]}")


def tail(path: Path, n: int = 6000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


@pytest.fixture
def node():
    """A private sshd on 127.0.0.1 whose sessions get their own HOME; yields its settings."""
    tools = {t: shutil.which(t) for t in ("sshd", "ssh", "ssh-keygen", "rsync")}
    tools["sshd"] = tools["sshd"] or (
        "/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None
    )
    missing = [t for t, path in tools.items() if not path]
    if missing:
        pytest.skip(
            f"cluster-launcher test needs {', '.join(missing)} "
            "(Debian: apt-get install openssh-server rsync)"
        )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    elif not os.path.isdir("/run/sshd"):
        pytest.skip("cluster-launcher test: sshd needs /run/sshd, which only root can create")
    # Short: Ray's unix socket paths live under RAY_TMPDIR and must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="emodna-cl-"))
    home, ray_tmp, launcher_tmp = root / "home", root / "rt", root / "lt"
    for d in (home, ray_tmp, launcher_tmp):
        d.mkdir()
    keygen = [tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", str(root / "host_key")], check=True)
    subprocess.run([*keygen, "-f", str(root / "client_key")], check=True)
    shutil.copy(root / "client_key.pub", root / "authorized_keys")
    (root / "stop_ray.py").write_text(STOP_SCRIPT)
    (root / "relay.py").write_text(RELAY_SCRIPT)
    (home / ".bashrc").write_text(
        BASHRC.format(
            bindir=Path(sys.executable).parent,
            ray_tmp=ray_tmp,
            python=sys.executable,
            stop_script=root / "stop_ray.py",
        )
    )
    port = free_port()
    (root / "sshd_config").write_text(f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {root / "host_key"}
PidFile {root / "sshd.pid"}
AuthorizedKeysFile {root / "authorized_keys"}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {_user()}
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
SetEnv HOME={home}
""")
    log = root / "sshd.log"
    sshd = subprocess.Popen([tools["sshd"], "-D", "-f", str(root / "sshd_config"), "-E", str(log)])
    try:
        wait_for_port(port, sshd, log)
        yield {
            "root": root,
            "home": home,
            "ray_tmp": ray_tmp,
            "launcher_tmp": launcher_tmp,
            "port": port,
            "key": root / "client_key",
            "log": log,
        }
    finally:
        sshd.terminate()
        try:
            sshd.wait(10)
        except subprocess.TimeoutExpired:
            sshd.kill()
        # Ray's SSH control master keeps a session for 10 s; it ends with the connection.
        shutil.rmtree(root, ignore_errors=True)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def cluster_config_for(node: dict, name: str, token: Path) -> dict:
    """cluster/cluster.yaml pointed at the private sshd, with the few test-only changes."""
    config = load("cluster.yaml")
    config["cluster_name"] = name
    config["provider"] = {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
    config["auth"] = {
        "ssh_user": _user(),
        "ssh_private_key": str(node["key"]),
        "ssh_proxy_command": f"{sys.executable} {node['root'] / 'relay.py'} 127.0.0.1 {node['port']}",
    }
    # The token mount stays; its local side is this test's token, not ~/.ray/auth_token.
    config["file_mounts"]["~/.ray/auth_token"] = str(token)
    # No reinstall (see the module docstring): check what `ray submit` relies on instead.
    config["setup_commands"] = [
        "python -c 'import emodna, sweep, ray, sys; print(\"node python:\", sys.executable)'"
    ]
    ports = {
        f: free_port()
        for f in (
            "port",
            "object-manager-port",
            "node-manager-port",
            "ray-client-server-port",
            "dashboard-port",
        )
    }
    extra = " ".join(f"--{flag}={p}" for flag, p in ports.items())
    head = config["head_start_ray_commands"]
    start = [c for c in head if "ray start" in c]
    assert len(start) == 1, head
    config["head_start_ray_commands"] = [
        c if "ray start" not in c else f"{c} {extra}" for c in head
    ]
    return config


def test_cluster_config_for(tmp_path):
    """The derived file keeps cluster.yaml's mounts and start command (checked offline)."""
    node = {
        "root": tmp_path,
        "home": tmp_path,
        "ray_tmp": tmp_path / "rt",
        "port": 2222,
        "key": tmp_path / "k",
    }
    config = cluster_config_for(node, "emodna-test", tmp_path / "token")
    base = load("cluster.yaml")
    assert {k for k in config["file_mounts"]} == set(base["file_mounts"])
    head = config["head_start_ray_commands"]
    assert "ray stop" in head[0] and head[1].startswith(base["head_start_ray_commands"][1])

    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(config))


def ray_cli(args: list[str], env: dict, log: Path, timeout: float) -> subprocess.CompletedProcess:
    """`ray <args>` from the repo root (as the README says), output to a log file."""
    with open(log, "ab") as out:
        out.write(f"\n$ ray {' '.join(args)}\n".encode())
        out.flush()
        return subprocess.run(
            [sys.executable, "-m", "ray.scripts.scripts", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )


def ssh_control_dir(cluster_name: str) -> Path:
    """Where Ray's SSH runner keeps its ControlMaster socket for a cluster (command_runner.py)."""
    user = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
    return Path("/tmp") / f"ray_ssh_{user}" / hashlib.sha256(cluster_name.encode()).hexdigest()[:10]


def marked_processes(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and int(pid) != os.getpid():
            found.append(f"{pid}: {cmd[:200]}")
    return found


@pytest.mark.slow
@pytest.mark.corpora
def test_ray_up_submit_down(node, corpora_dir, feature_cache, real_features, tmp_path):
    """The README's three commands run a one-trial sweep on a (one-node) local-provider cluster."""
    token = node["root"] / "auth_token"
    token.write_text(secrets.token_hex(32))
    name = f"emodna-test-{secrets.token_hex(4)}"
    config_file = node["root"] / "cluster.yaml"
    config_file.write_text(yaml.safe_dump(cluster_config_for(node, name, token)))
    space = node["root"] / "tiny.yaml"
    space.write_text(TINY_SPACE)
    out = node["root"] / "runs" / "x"
    log = tmp_path / "ray-cli.log"
    # The launching side's Ray state (cluster-<name>.state/.lock) and Python temp files
    # (Ray's config cache /tmp/ray-config-*, the bootstrap config) stay in the test's folder.
    launcher_tmp = str(node["launcher_tmp"])
    env = {
        **os.environ,
        "RAY_TMPDIR": launcher_tmp,
        "TMPDIR": launcher_tmp,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(var, None)
    marker = str(node["ray_tmp"])
    t0 = time.perf_counter()
    try:
        up = ray_cli(["up", "-y", str(config_file)], env, log, timeout=300)
        assert up.returncode == 0, f"ray up failed:\n{tail(log)}\nsshd:\n{tail(node['log'], 2000)}"
        home = node["home"]
        assert (home / "emodna-sweep" / "sweep" / "run.py").is_file(), "file_mounts not synced"
        assert not list((home / "emodna-sweep").rglob("__pycache__")), "rsync_exclude ignored"
        assert (home / ".ray" / "auth_token").read_text() == token.read_text()
        assert marked_processes(marker), "ray up returned but no Ray process runs on the node"

        submit = ray_cli(
            [
                "submit",
                str(config_file),
                "sweep/run.py",
                "--",
                "--corpora-dir",
                str(corpora_dir),
                "--space",
                str(space),
                "--budget",
                "1",
                "--out",
                str(out),
                "--cache",
                str(feature_cache),
            ],
            env,
            log,
            timeout=600,
        )
        assert submit.returncode == 0, f"ray submit failed:\n{tail(log)}"
        assert (home / "run.py").is_file(), "ray submit copies the script to ~/run.py"
    finally:
        try:
            down = ray_cli(["down", "-y", str(config_file)], env, log, timeout=120)
        except subprocess.TimeoutExpired:
            down = None
        left = marked_processes(marker)
        # Safety net, whatever happened above: stop what is still ours, only ours.
        subprocess.run([sys.executable, str(node["root"] / "stop_ray.py"), marker], timeout=60)
        # Ray's SSH control socket folder for this cluster name (fixed under /tmp).
        shutil.rmtree(ssh_control_dir(name), ignore_errors=True)
    elapsed = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    submitted, downed = text.split("$ ray submit")[-1], text.split("$ ray down")[-1]
    assert down is not None and down.returncode == 0, f"ray down failed:\n{tail(log)}"
    assert "scoped ray stop" in downed, "ray down did not go through the scoped `ray stop`"
    assert not left, "ray down left Ray processes running:\n" + "\n".join(left)
    assert "joined the Ray cluster" in submitted, "the driver did not join the launched cluster"
    assert "Token authentication is enabled" in submitted, "the driver did not use the token"

    import pandas as pd

    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 1 and trials["status"].tolist() == ["completed"], trials.to_string()
    assert trials["target_uar"].between(0, 1).all()
    assert (out / "study.db").is_file()
    print(f"ray up + submit + down: {elapsed:.0f} s")
