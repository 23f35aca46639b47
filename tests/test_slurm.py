"""``cluster/slurm/sweep.sbatch`` against a real Slurm running on this machine.

The fixture starts a private Slurm, all of it under one temporary folder: its own munge key
and ``munged`` (``AuthInfo=socket=`` points Slurm at that socket, so ``/etc/munge`` is not
touched), a ``slurm.conf``, ``slurmctld``, and one ``slurmd`` per node, as root on free
ports, found through ``SLURM_CONF`` by every client command. This machine is two Slurm
nodes (two ``slurmd`` with their own names and ports, as Slurm's multiple-slurmd setup): a
one-node job takes the script's head-only path, a two-node job also starts a Ray worker
with ``srun`` on the second node. The
script is submitted as a user submits it, from the root of the checkout; what differs here
comes in through sbatch options (partition, CPUs, time, output) and the environment
variables the script reads (corpora, out folder, space, budget), never by editing it.

Needs the Debian packages ``slurm-wlm`` and ``munge`` and root (``slurmd`` launches jobs as
their user); skipped with a message without them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.test_cluster import STOP_SCRIPT, free_port, marked_processes
from tests.test_sweep import UNIT, read_trials, results, trial_dir

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "cluster/slurm/sweep.sbatch"  # relative: submitted from the repo root, as the README says
SMOKE = "search_spaces/smoke.yaml"
N_UNITS = 2  # the smoke space: two scenarios x one seed
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scancel", "scontrol", "squeue", "sinfo", "srun")
PARTITION = "emodnatest"
N_NODES = 2  # Slurm nodes on this machine, each with all its CPUs (at most 2)

SLURM_CONF = """\
ClusterName=emodnatest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=30
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
{nodes}
PartitionName={partition} Nodes={names} Default=YES MaxTime=INFINITE State=UP
"""


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    for folder in ("/usr/sbin", "/usr/bin"):
        if not found and os.access(f"{folder}/{name}", os.X_OK):
            found = f"{folder}/{name}"
    return found


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path} missing)"


class Slurm:
    """A running private cluster: its folder, the environment its clients need, its tools."""

    def __init__(self, root: Path, tools: dict, cpus: int):
        self.root, self.tools, self.cpus = root, tools, cpus
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
        for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
            env.pop(var, None)
        env["SLURM_CONF"] = str(root / "slurm.conf")
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        self.env = env

    def cmd(self, name: str, *args, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.tools[name], *map(str, args)],
            env=kw.pop("env", self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,
        )

    def sbatch(self, out: Path, *options, env: dict, timeout: float = 60):
        """The README's `sbatch cluster/slurm/sweep.sbatch`, from the repo root, with the test's
        options (before the script) and variables (the environment sbatch passes on)."""
        return self.cmd(
            "sbatch",
            f"--partition={PARTITION}",
            "--nodes=1",  # options given later win (the two-node smoke sweep)
            f"--cpus-per-task={self.cpus}",
            "--time=30",
            f"--output={self.root}/job-%j.out",
            *options,
            SCRIPT,
            env={**self.env, **env},
            cwd=ROOT,
            timeout=timeout,
        )

    def job(self, job_id: str) -> dict:
        shown = self.cmd("scontrol", "show", "job", "-o", job_id).stdout
        return dict(re.findall(r"(\w+)=(\S*)", shown))

    def output(self, job_id: str) -> str:
        return (self.root / f"job-{job_id}.out").read_text(errors="replace")


@pytest.fixture(scope="module")
def slurm():
    tools = {name: _tool(name) for name in DAEMONS + CLIENTS}
    missing = [name for name, path in tools.items() if not path]
    if missing:
        pytest.skip(
            f"Slurm tests need {', '.join(missing)}: install slurm-wlm and munge "
            "(Debian/Ubuntu, as root: apt-get install -y slurm-wlm munge)"
        )
    if os.geteuid() != 0:
        pytest.skip("Slurm tests run slurmd, which must run as root (it starts jobs as their user)")
    # Short: Ray's socket paths live under the jobs' RAY_TMPDIR, inside this folder (108 bytes)
    root = Path(tempfile.mkdtemp(prefix="emodna-sl-"))
    (root / "state").mkdir()
    (root / "spool").mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    cpus = min(2, os.cpu_count() or 1)
    host = socket.gethostname().split(".")[0]
    names = [f"emodna{i}" for i in range(1, N_NODES + 1)]
    nodes = "\n".join(
        f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={free_port()} "
        f"CPUs={cpus} State=UNKNOWN"
        for name in names
    )
    (root / "slurm.conf").write_text(
        SLURM_CONF.format(
            host=host,
            root=root,
            nodes=nodes,
            names=",".join(names),
            partition=PARTITION,
            ctld_port=free_port(),
            slurmd_port=free_port(),
        )
    )
    cluster = Slurm(root, tools, cpus)
    daemons: list[subprocess.Popen] = []

    def start(*argv, log: str) -> None:
        with open(root / log, "wb") as f:
            daemons.append(subprocess.Popen(argv, env=cluster.env, stdout=f, stderr=f))

    try:
        start(
            tools["munged"],
            "--foreground",
            "--force",  # root, and a key in a folder under /tmp
            f"--key-file={key}",
            f"--socket={root / 'munge.sock'}",
            f"--pid-file={root / 'munged.pid'}",
            f"--log-file={root / 'munged.log'}",
            f"--seed-file={root / 'munged.seed'}",
            log="munged.out",
        )
        deadline = time.monotonic() + 15
        while not (root / "munge.sock").exists():
            assert daemons[0].poll() is None, f"munged exited:\n{_tail(root / 'munged.log')}"
            assert time.monotonic() < deadline, (
                f"munged made no socket:\n{_tail(root / 'munged.log')}"
            )
            time.sleep(0.1)
        conf = str(root / "slurm.conf")
        start(tools["slurmctld"], "-D", "-i", "-f", conf, log="slurmctld.out")
        for name in names:
            start(tools["slurmd"], "-D", "-N", name, "-f", conf, log=f"slurmd-{name}.out")

        def logs() -> str:
            return "\n".join(_tail(f, 2000) for f in sorted(root.glob("slurm*.log")))

        deadline = time.monotonic() + 60
        while cluster.cmd("sinfo", "-h", "-N", "-o", "%T").stdout.split() != ["idle"] * N_NODES:
            for d in daemons:
                assert d.poll() is None, (
                    f"{' '.join(map(str, d.args))} exited with {d.returncode}:\n{logs()}"
                )
            assert time.monotonic() < deadline, (
                f"the nodes did not become idle: {cluster.cmd('sinfo', '-N').stdout}\n{logs()}"
            )
            time.sleep(0.5)
        yield cluster
    finally:
        # Jobs first (their slurmstepd outlives slurmd), then the daemons, newest first.
        if daemons and all(d.poll() is None for d in daemons):
            for job_id in cluster.cmd("squeue", "-h", "-o", "%i").stdout.split():
                cluster.cmd("scancel", job_id)
            deadline = time.monotonic() + 90
            while cluster.cmd("squeue", "-h", "-o", "%i").stdout.strip():
                if time.monotonic() > deadline:
                    break
                time.sleep(1)
        for d in reversed(daemons):
            d.terminate()
            try:
                d.wait(15)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        # Safety net: whatever a job left (Ray, a driver) holds this folder in its command line
        stop = root / "stop.py"
        stop.write_text(STOP_SCRIPT)
        subprocess.run([sys.executable, str(stop), str(root)], timeout=60)
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Fast: what the README shows is the script; the script refuses to run outside Slurm


def test_readme_shows_the_scripts_edit_block():
    script = (ROOT / SCRIPT).read_text()
    block = re.search(
        r"^# ---- edit these lines.*?^# ---- nothing to edit below[^\n]*\n", script, re.M | re.S
    )
    assert block, f"{SCRIPT}: no '# ---- edit these lines' ... '# ---- nothing to edit below' block"
    readme = (ROOT / "README.md").read_text()
    assert "\n## Run on Slurm\n" in readme, "README.md has no '## Run on Slurm' section"
    section = readme.split("\n## Run on Slurm\n", 1)[1].split("\n## ", 1)[0]
    shown = re.search(r"^```[^\n]*\n(.*?)^```", section, re.M | re.S).group(1)
    assert shown == block.group(0), "README's Run on Slurm block differs from " + SCRIPT
    assert f"sbatch {SCRIPT}" in section


def test_script_outside_slurm_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run(
        ["bash", str(ROOT / SCRIPT)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"sbatch {SCRIPT}" in lines[0], proc.stderr


# ---------------------------------------------------------------------------------------
# The real thing


def variables(slurm: Slurm, out: Path, corpora_dir: Path, cache: Path, **more) -> dict:
    """What a user sets at the top of the script, here through the environment."""
    return {
        "CORPORA_DIR": str(corpora_dir),
        "OUT": str(out),
        "SPACE": SMOKE,
        "BUDGET": "2",
        "EXTRA_ARGS": "",
        "VENV": "",
        "EMODNA_CACHE": str(cache),  # the session's warm feature cache (no --cache needed)
        "RAY_TMPDIR": str(slurm.root),  # Ray's files per job below it: ray-job<ID>
        **more,
    }


def submitted_id(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0 and proc.stdout.strip(), f"sbatch failed:\n{proc.stderr}"
    return proc.stdout.strip().split(";")[0]


def left_behind(slurm: Slurm, job_id: str) -> list[str]:
    return marked_processes(f"{slurm.root}/ray-job{job_id}")


@pytest.mark.slow
@pytest.mark.corpora
def test_smoke_sweep_through_sbatch_wait(slurm, corpora_dir, warm_cache):
    """`sbatch --wait` of the script on two nodes (Ray's head on the first, a worker on the
    second) runs the smoke sweep to the end and stops Ray; a second sbatch of the finished
    sweep (the tail of a job chain) exits at once."""
    out = slurm.root / "runs" / "smoke"
    env = variables(slurm, out, corpora_dir, warm_cache)
    t0 = time.perf_counter()
    two_nodes = ("--nodes=2", "--cpus-per-task=1")  # this machine's 2 cores, one per node
    proc = slurm.sbatch(out, *two_nodes, "--wait", "--parsable", env=env, timeout=900)
    elapsed = time.perf_counter() - t0
    job_id = submitted_id(proc)
    text = slurm.output(job_id)
    assert proc.returncode == 0, f"job {job_id} failed:\n{text[-6000:]}"
    assert "Ray is up: python sweep/run.py --corpora-dir" in text, text[-4000:]
    assert "2 node(s) (emodna1 emodna2), 1 CPUs and 0 GPUs each" in text, text[-4000:]
    assert "joined the Ray cluster: 2 CPUs" in text, text[-4000:]  # both nodes' Ray
    assert f"--storage {out}/study.log" in text and "sweep done in" in text, text[-4000:]
    assert "sweep finished: summarize with: emodna summarize" in text, text[-4000:]
    assert not left_behind(slurm, job_id), "Ray outlived the job:\n" + "\n".join(
        left_behind(slurm, job_id)
    )

    table = read_trials(out)
    assert len(table) == 2 * N_UNITS and set(table["status"]) == {"completed"}, table
    assert not table.duplicated(UNIT).any(), table[UNIT]
    assert table["target_uar"].between(0, 1).all()
    assert (out / "study.log").is_file() and not (out / "study.db").exists()
    print(f"sbatch --wait, smoke sweep: {elapsed:.0f} s")

    again = slurm.sbatch(out, *two_nodes, "--wait", "--parsable", env=env, timeout=300)
    again_id = submitted_id(again)
    assert again.returncode == 0, slurm.output(again_id)
    assert "nothing to do" in slurm.output(again_id), slurm.output(again_id)
    assert len(read_trials(out)) == 2 * N_UNITS


@pytest.mark.slow
@pytest.mark.corpora
def test_time_limit_signal_stops_and_next_job_resumes(slurm, corpora_dir, warm_cache):
    """USR1 to the batch shell (what --signal=B:USR1@180 sends ahead of the time limit) stops
    the sweep cleanly; the same sbatch again finishes it with every unit run once."""
    epochs, budget = 3, 2
    out = slurm.root / "runs" / "limited"
    env = variables(
        slurm,
        out,
        corpora_dir,
        warm_cache,
        BUDGET=str(budget),
        EXTRA_ARGS=f"--no-prune --epochs {epochs}",
    )
    job_id = submitted_id(slurm.sbatch(out, "--parsable", env=env))
    log = slurm.root / f"job-{job_id}.out"

    # While it runs: the cluster the job started refuses a client without its token
    deadline = time.monotonic() + 300
    while "Ray is up" not in _tail(log, 100000):
        assert slurm.job(job_id).get("JobState") in ("PENDING", "RUNNING"), _tail(log)
        assert time.monotonic() < deadline, f"Ray did not come up:\n{_tail(log)}"
        time.sleep(0.5)
    address = re.search(r"head \S+ at (\S+?);", log.read_text()).group(1)
    intruder = subprocess.run(
        [sys.executable, "-m", "ray.scripts.scripts", "health-check", "--address", address],
        env={**slurm.env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert intruder.returncode != 0 and "Authentication token is missing or incorrect" in (
        intruder.stderr
    ), intruder.stderr[-2000:]

    # Mid-sweep: a unit is done, others are running; then Slurm's warning signal
    while not (out / "trials.parquet").exists() or len(read_trials(out)) < 1:
        assert slurm.job(job_id).get("JobState") == "RUNNING", _tail(log)
        assert time.monotonic() < deadline, f"no unit finished in time:\n{_tail(log)}"
        time.sleep(0.5)
    signalled = slurm.cmd("scancel", "--signal=USR1", "--batch", job_id)
    assert signalled.returncode == 0, signalled.stderr
    deadline = time.monotonic() + 180
    while (job := slurm.job(job_id)).get("JobState") in ("PENDING", "RUNNING", "COMPLETING"):
        assert time.monotonic() < deadline, f"the job did not stop:\n{_tail(log)}"
        time.sleep(1)
    text = log.read_text()
    assert job.get("ExitCode") == "143:0", (
        f"{job.get('JobState')} {job.get('ExitCode')}\n{text[-4000:]}"
    )
    assert "USR1: stopping the sweep" in text and "sweep stopped (USR1)" in text, text[-4000:]
    assert f"resume with: python sweep/run.py --out {out} --resume" in text, text[-4000:]
    assert not left_behind(slurm, job_id), "Ray outlived the job:\n" + "\n".join(
        left_behind(slurm, job_id)
    )
    before = read_trials(out)
    assert 1 <= len(before) < budget * N_UNITS, "the sweep had finished before the signal"

    # The next job of the chain: the same script, the same variables
    proc = slurm.sbatch(out, "--wait", "--parsable", env=env, timeout=900)
    second = submitted_id(proc)
    text = slurm.output(second)
    assert proc.returncode == 0, f"job {second} failed:\n{text[-6000:]}"
    assert f"{out} holds a sweep: resuming it" in text, text[-4000:]
    assert f"resuming {out}: {len(before)} units done" in text, text[-4000:]

    table = read_trials(out)
    assert len(table) == budget * N_UNITS, table[UNIT + ["trial_id", "status"]]
    assert not table.duplicated(UNIT).any(), table[UNIT + ["trial_id"]]
    assert set(table["status"]) == {"completed"} and (table["epochs_run"] == epochs).all()
    merged = before.merge(table, on="trial_id", suffixes=("_before", ""))
    assert len(merged) == len(before)
    assert (merged["target_uar_before"] == merged["target_uar"]).all()
    # every epoch of every unit ran once: the interrupted ones went on from their checkpoints
    for trial_id in table["trial_id"]:
        epochs_seen = [r["epoch"] for r in results(trial_dir(out, trial_id) / "result.json")]
        assert epochs_seen == list(range(1, epochs + 1)), (trial_id, epochs_seen)
