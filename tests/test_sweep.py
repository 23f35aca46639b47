"""End-to-end sweeps: ``python sweep/run.py`` in a subprocess on the real corpora.

Each sweep runs in its own process session (``start_new_session=True``) with its own embedded
Ray (``--address local``), so no other Ray cluster on the machine is joined or touched.
Ray's head processes (GCS, raylet, agents) stay in the driver's process group and die with
it (Ray also sets PR_SET_PDEATHSIG on them); its worker processes get a process group of
their own but keep the driver's *session*, so a killed driver's Ray is taken down by killing
every process whose session id is the driver's pid (:func:`kill_session`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import (
    ROOT,
    RUN,
    kill_session,
    run_sweep,
    session_pids,
    start_sweep,
    sweep_cmd,
    tail,
)

SMOKE = ROOT / "search_spaces" / "smoke.yaml"
N_UNITS = 2  # scenarios x seeds of SMOKE
UNIT = ["config_id", "source", "target", "task", "seed"]


# --------------------------------------------------------------------------- helpers


def read_trials(out: Path) -> pd.DataFrame:
    path = out / "trials.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def trial_dir(out: Path, trial_id: str) -> Path:
    (found,) = [d for d in out.iterdir() if d.is_dir() and d.name.endswith(f"-{trial_id}")]
    return found


def results(path: Path) -> list[dict]:
    """Tune's result.json of a trial: one JSON line per reported epoch."""
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def load_study(out: Path):
    import optuna

    return optuna.load_study(study_name=out.name, storage=f"sqlite:///{out / 'study.db'}")


def check_study_matches_table(out: Path, table: pd.DataFrame, budget: int) -> None:
    """Optuna holds ``budget`` COMPLETE configs, each valued at the mean of its table rows."""
    from optuna.trial import TrialState

    study = load_study(out)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == budget, [t.state for t in study.trials]
    means = table.groupby("config_id")["target_uar"].mean()
    for t in complete:
        assert t.value == pytest.approx(means[t.number], rel=1e-9, abs=1e-12)
        assert len(t.user_attrs["unit_values"]) == N_UNITS


def load_checkpoint(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def latest_checkpoint(tdir: Path) -> Path:
    checkpoints = sorted(tdir.glob("checkpoint_*/checkpoint.pt"))
    assert checkpoints, f"{tdir} holds no checkpoint"
    return checkpoints[-1]


def sweep_args(corpora_dir, cache, space, budget, out, *extra):
    return (
        "--corpora-dir",
        corpora_dir,
        "--cache",
        cache,
        "--space",
        space,
        "--budget",
        budget,
        "--out",
        out,
        *extra,
    )


def smoke_args(corpora_dir, cache, epochs, budget, out, *extra):
    """A sweep of the shipped smoke space, trained ``epochs`` epochs."""
    return sweep_args(corpora_dir, cache, SMOKE, budget, out, "--epochs", epochs, *extra)


# --------------------------------------------------------------------------- tests


@pytest.mark.slow
@pytest.mark.corpora
def test_smoke_sweep_writes_every_artefact(smoke_sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    epochs, budget = 2, 2  # the smoke space's epochs, the first hour's --budget
    out, log = smoke_sweep.out, smoke_sweep.log
    assert smoke_sweep.rc == 0, tail(log)
    # quiet by default: the plan, one line per corpus, [sweep] lines; no Tune tables or checkpoint lines
    text = log.read_text()
    assert "plan: 2 configs x 2 units (scenario x seed) = 4 units of 2 epochs" in text
    assert (
        "EMODB: 535 files used, 0 skipped" in text and "CASIA: 1200 files used, 0 skipped" in text
    )
    assert text.count("[sweep] ") == budget * N_UNITS
    assert "Checkpoint successfully created" not in text and "Trial status" not in text

    # trials.parquet: one completed row per (config, scenario, seed)
    table = read_trials(out)
    assert len(table) == budget * N_UNITS
    assert set(table["status"]) == {"completed"}
    assert not table.duplicated(UNIT).any()
    assert sorted(table["config_id"].unique()) == list(range(budget))
    for col in ("trial_id", "hp_tau_p", "hp_lr", "hp_batch_size", "method"):
        assert table[col].notna().all(), col
    for metric in ("target_uar", "target_war", "target_f1_pos", "target_f1_macro"):
        assert table[metric].between(0, 1).all(), table[metric]
    assert (table["epochs_run"] == epochs).all()
    assert (table.groupby("config_id")[["hp_tau_p", "hp_lr"]].nunique() == 1).all().all()

    # Optuna: one COMPLETE trial per config, valued at the mean of its rows
    check_study_matches_table(out, table, budget)

    # per-trial TensorBoard (curves + HParams) and a loadable checkpoint
    for row in table.itertuples():
        tdir = trial_dir(out, row.trial_id)
        acc = EventAccumulator(str(tdir / "tensorboard"), size_guidance={"scalars": 0})
        acc.Reload()
        assert "target/uar" in acc.Tags()["scalars"], acc.Tags()
        steps = [e.step for e in acc.Scalars("target/uar")]
        assert steps == list(range(1, epochs + 1))
        assert acc.Scalars("target/uar")[-1].value == pytest.approx(row.target_uar, rel=1e-5)
        hparams = acc.PluginTagToContent("hparams")
        assert any("session_start_info" in tag for tag in hparams), hparams
        # one HParams row per trial: Ray's own TensorBoard logger writes no second copy
        assert not list(tdir.glob("events.out.tfevents*")), list(tdir.iterdir())
        assert (tdir / "result.json").exists()
        state = load_checkpoint(latest_checkpoint(tdir))
        assert state["epoch"] == epochs
        assert [h["epoch"] for h in state["history"]] == list(range(1, epochs + 1))
        assert state["config"]["source"] == row.source and state["config"]["lr"] == pytest.approx(
            row.hp_lr
        )

    # one aggregate scalar per config
    acc = EventAccumulator(str(out / "tensorboard-configs"), size_guidance={"scalars": 0})
    acc.Reload()
    points = {e.step: e.value for e in acc.Scalars("config/target_uar_mean")}
    means = table.groupby("config_id")["target_uar"].mean()
    assert set(points) == set(range(budget))
    for config_id, value in points.items():
        assert value == pytest.approx(means[config_id], rel=1e-5)


@pytest.mark.slow
@pytest.mark.corpora
def test_killed_driver_resumes_without_rerunning(tmp_path, corpora_dir, warm_cache):
    epochs, budget = 3, 2
    out, log = tmp_path / "resumed", tmp_path / "resumed.log"
    space = tmp_path / "smoke.yaml"
    shutil.copy(SMOKE, space)
    args = sweep_args(corpora_dir, warm_cache, space, budget, out, "--epochs", epochs, "--no-prune")
    proc = start_sweep(log, *args)
    try:
        deadline = time.monotonic() + 240
        while len(read_trials(out)) < 1:
            assert proc.poll() is None, f"the sweep ended before the kill:\n{tail(log)}"
            assert time.monotonic() < deadline, f"no trial finished in time:\n{tail(log)}"
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and Ray's head processes
    finally:
        kill_session(proc.pid)  # Ray's workers: a process group of their own, same session
        proc.wait()
    before = read_trials(out)
    assert len(before) < budget * N_UNITS, "the sweep had finished before it was killed"
    results_before = {t: results(trial_dir(out, t) / "result.json") for t in before["trial_id"]}

    space.write_text("method: no-such-method\n")  # edited after the start: the copy is resumed
    rc = run_sweep(log, "--out", out, "--resume")
    assert rc == 0, tail(log)
    assert f"note: {space} differs from the copy this sweep started with" in log.read_text()

    table = read_trials(out)
    assert len(table) == budget * N_UNITS, table[UNIT + ["trial_id", "status"]]
    assert not table.duplicated(UNIT).any(), table[UNIT + ["trial_id"]]
    assert set(table["status"]) == {"completed"}
    assert (table["epochs_run"] == epochs).all()
    # the rows written before the kill are there unchanged
    merged = before.merge(table, on="trial_id", suffixes=("_before", ""))
    assert len(merged) == len(before)
    assert (merged["target_uar_before"] == merged["target_uar"]).all()
    assert (merged["config_id_before"] == merged["config_id"]).all()
    # ... and their trials did not run again: no new epochs in Tune's results
    for trial_id, old in results_before.items():
        new = results(trial_dir(out, trial_id) / "result.json")
        assert [r["epoch"] for r in new] == list(range(1, epochs + 1)), trial_id
        assert new == old
    # every trial's epochs ran once (a resumed trial continues from its checkpoint)
    for trial_id in table["trial_id"]:
        tdir = trial_dir(out, trial_id)
        assert [r["epoch"] for r in results(tdir / "result.json")] == list(range(1, epochs + 1))
        history = load_checkpoint(latest_checkpoint(tdir))["history"]
        assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    check_study_matches_table(out, table, budget)


@pytest.mark.slow
@pytest.mark.corpora
def test_killed_worker_is_retried_from_its_checkpoint(tmp_path, corpora_dir, warm_cache):
    epochs, budget = 3, 1
    out, log = tmp_path / "retried", tmp_path / "retried.log"
    proc = start_sweep(log, *smoke_args(corpora_dir, warm_cache, epochs, budget, out))
    try:
        deadline, victim = time.monotonic() + 240, None
        while victim is None:
            assert proc.poll() is None, f"the sweep ended before the kill:\n{tail(log)}"
            assert time.monotonic() < deadline, f"no trial reported an epoch in time:\n{tail(log)}"
            time.sleep(0.2)
            for path in out.glob("*/result.json") if out.is_dir() else []:
                lines = results(path)
                if lines and lines[-1]["epoch"] < epochs:
                    victim = path.parent, lines[-1]["pid"]
                    break
        tdir, pid = victim
        assert pid in session_pids(proc.pid), "the trial's worker is not in the sweep's session"
        assert "ray::" in Path(f"/proc/{pid}/cmdline").read_text()
        os.kill(pid, signal.SIGKILL)
        rc = proc.wait(timeout=300)
    finally:
        kill_session(proc.pid)
        proc.wait()
    assert rc == 0, tail(log)

    table = read_trials(out)
    assert len(table) == budget * N_UNITS
    assert set(table["status"]) == {"completed"}
    lines = results(tdir / "result.json")
    # resumed, not restarted: epochs 1..N once each, the later ones from a new worker
    assert [r["epoch"] for r in lines] == list(range(1, epochs + 1))
    pids = [r["pid"] for r in lines]
    assert pids[0] == pid and pids[-1] != pid, pids
    first_new = pids.index(pids[-1])
    assert first_new >= 1, pids
    history = load_checkpoint(latest_checkpoint(tdir))["history"]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    trial_id = tdir.name.rsplit("-", 1)[1]
    assert table.set_index("trial_id").loc[trial_id, "epochs_run"] == epochs


FAULT_SPACE = """\
method: emodna
metric: target_uar
mode: max
epochs: 2
seeds: [0]
sampler: grid
scenarios:
  list:
    - {source: EMODB, target: CASIA, task: arousal}
    - {source: CASIA, target: EMODB, task: arousal}
fixed:
  batch_size: 64
params:
  lr: {type: categorical, choices: [0.001, 1000000.0]}  # 1e6 diverges in epoch 1
"""


@pytest.mark.slow
@pytest.mark.corpora
def test_faults_are_retried_and_divergence_is_recorded(
    tmp_path, corpora_dir, warm_cache, monkeypatch
):
    """A trial raising mid-run is retried from its checkpoint (and recorded as an error when
    every attempt raises); a diverging config is recorded with its loss term, not retried."""
    space = tmp_path / "faults.yaml"
    space.write_text(FAULT_SPACE)
    out, log = tmp_path / "faults", tmp_path / "faults.log"
    # EMODB->CASIA raises after epoch 2's steps in its first attempt only; CASIA->EMODB in every one
    fault = "EMODB-CASIA-arousal@2:once,CASIA-EMODB-arousal@2"
    monkeypatch.setenv("EMODNA_SWEEP_FAULT", fault)  # the embedded Ray's workers inherit it
    rc = run_sweep(
        log, *sweep_args(corpora_dir, warm_cache, space, 2, out, "--max-failures", 1, "--no-prune")
    )
    assert rc == 0, tail(log)

    table = read_trials(out).set_index(["hp_lr", "source"])
    assert len(table) == 4 and not table.index.duplicated().any(), table
    ok, bad = 0.001, 1e6
    # the fault of the first attempt: retried once, from the checkpoint of epoch 1
    once = table.loc[(ok, "EMODB")]
    assert (once.status, once.failures, once.epochs_run, once.error) == ("completed", 1, 2, "")
    assert 0 <= once.target_uar <= 1
    assert [r["epoch"] for r in results(trial_dir(out, once.trial_id) / "result.json")] == [1, 2]
    # the fault of every attempt: tried 1 + --max-failures times, then recorded
    always = table.loc[(ok, "CASIA")]
    assert (always.status, always.failures, always.epochs_run) == ("error", 2, 1)
    assert "injected fault in CASIA-EMODB-arousal at epoch 2" in always.error
    # the diverging config: stopped at once, the loss term recorded, never retried
    for source in ("EMODB", "CASIA"):
        row = table.loc[(bad, source)]
        assert (row.status, row.failures, row.epochs_run) == ("diverged", 0, 0), row
        assert re.match(r"loss term '\w+' became (nan|inf) at epoch 1, step \d+", row.error), (
            row.error
        )
        assert math.isnan(row.target_uar)
    # Optuna: the diverged config failed; the other is valued at its one completed unit
    from optuna.trial import TrialState

    study = {t.params["lr"]: t for t in load_study(out).trials}
    assert study[bad].state == TrialState.FAIL
    assert study[ok].state == TrialState.COMPLETE and study[ok].value == pytest.approx(
        once.target_uar
    )
    # the driver printed its progress after every unit, ending with all 4 done
    progress = [ln for ln in log.read_text().splitlines() if ln.startswith("[sweep] ")]
    assert progress and progress[-1].startswith(
        "[sweep] 4/4 units done (3 failed, 0 configs pruned)"
    ), progress
    assert "4 trials, 1 failed for good, 2 diverged" in log.read_text()


def _run_fast(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        sweep_cmd(*args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


@pytest.mark.parametrize("existing", [True, False])
def test_resume_of_a_folder_without_a_sweep_exits_2(tmp_path, existing):
    out = tmp_path / "nothing-here"
    if existing:
        out.mkdir()
        (out / "notes.txt").write_text("not a sweep")
    proc = _run_fast("--out", out, "--resume")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "resume" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "started a local Ray" not in proc.stdout
    assert out.exists() == existing


def test_zero_epochs_exits_2_before_ray_starts(tmp_path):
    proc = _run_fast(
        "--corpora-dir", tmp_path, "--space", SMOKE, "--epochs", 0, "--out", tmp_path / "o"
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "sweep: error: --epochs must be at least 1, got 0"
    assert "started a local Ray" not in proc.stdout


def test_out_under_a_file_exits_2_before_any_trial(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("a file, not a folder")
    out = afile / "sub"
    proc = _run_fast(
        "--corpora-dir", tmp_path, "--space", ROOT / "search_spaces" / "smoke.yaml", "--out", out
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "not writable" in lines[0], proc.stderr
    assert "started a local Ray" not in proc.stdout


@contextlib.contextmanager
def read_only(folder: Path):
    """Make ``folder`` refuse new files, for root too: chmod 555, plus the immutable
    attribute (``chattr +i``) where the user is root, who ignores permission bits."""
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if (
        immutable
        and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0
    ):
        folder.chmod(0o755)
        pytest.skip("root ignores chmod and chattr +i is not available here")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_read_only_out_exits_2_before_any_trial(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    out = parent / "sweep"
    with read_only(parent):
        proc = _run_fast(
            "--corpora-dir",
            tmp_path,
            "--space",
            ROOT / "search_spaces" / "smoke.yaml",
            "--out",
            out,
        )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "not writable" in lines[0], proc.stderr
    assert "started a local Ray" not in proc.stdout
    assert not out.exists()


@pytest.mark.corpora
def test_object_store_too_small_names_the_size_and_the_flag(
    tmp_path, corpora_dir, real_features, feature_cache
):
    """Four corpora (about 116 MiB of MFCCs) do not fit an 80 MB store: a clear error, no trial."""
    space = tmp_path / "all.yaml"
    space.write_text(
        "method: emodna\nepochs: 1\nseeds: [0]\nscenarios: {corpora: all, tasks: [arousal]}\n"
    )
    out = tmp_path / "small-store"
    proc = _run_fast(
        "--corpora-dir",
        corpora_dir,
        "--cache",
        feature_cache,
        "--space",
        space,
        "--out",
        out,
        "--object-store-memory",
        80 * 10**6,
    )
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "object store" in line and "--object-store-memory" in line, proc.stderr
    import re

    feature_mib = sum(f.nbytes for f in real_features.values()) / 2**20
    needed, capacity = map(int, re.search(r"need (\d+) MiB .* has (\d+) MiB", line).groups())
    assert needed == pytest.approx(feature_mib * 1.1 + 1, abs=1)  # features + 10% headroom + 1 MiB
    assert capacity == pytest.approx(80 * 10**6 / 2**20, abs=1)
    assert not (out / "trials.parquet").exists()


# --------------------------------------------------------------------------- a sweep that behaves


def test_resume_needs_out(tmp_path):
    proc = _run_fast("--resume")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "sweep: error: --resume needs --out: the sweep folder to continue, e.g. --out runs/transfer"
    )


def test_the_emodna_sweep_command_is_the_script(tmp_path):
    """The console entry the package installs runs the same main, errors and all."""
    exe = shutil.which("emodna-sweep")
    if exe is None:
        pytest.skip("emodna-sweep is not on PATH (package not installed with pip install -e .)")
    proc = subprocess.run(
        [exe, "--resume"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == _run_fast("--resume").stderr.strip()
    usage = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert usage.startswith("usage: emodna-sweep ")


def test_bad_fixed_value_exits_2_naming_the_file_and_leaves_no_out(tmp_path, corpora_dir):
    space = tmp_path / "bad.yaml"
    space.write_text(SMOKE.read_text().replace("batch_size: 64", "batch_size: 0"))
    out = tmp_path / "out"
    proc = _run_fast("--corpora-dir", corpora_dir, "--space", space, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"sweep: error: {space}: fixed: batch_size must be at least 1"
    assert not out.exists() and "started a local Ray" not in proc.stdout


def test_input_errors_are_found_before_torch_or_ray_is_imported(tmp_path, corpora_dir):
    """Why an input error costs well under two seconds: nothing heavy is imported to find it."""
    space = tmp_path / "bad.yaml"
    space.write_text(SMOKE.read_text().replace("batch_size: 64", "batch_size: 0"))
    probe = (
        "import runpy, sys\n"
        "try:\n"
        f"    sys.argv = ['sweep/run.py', '--corpora-dir', {str(corpora_dir)!r}, '--space', {str(space)!r}]\n"
        f"    runpy.run_path({str(RUN)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    heavy = sorted(m for m in ('torch', 'ray', 'sklearn', 'librosa') if m in sys.modules)\n"
        "    print('exit', e.code, 'imported', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "exit 2 imported []", proc.stdout + proc.stderr
    assert "batch_size must be at least 1" in proc.stderr


def test_searched_range_outside_what_training_accepts_exits_2(tmp_path, corpora_dir):
    space = tmp_path / "bad.yaml"
    space.write_text(
        SMOKE.read_text() + "  bn: {type: categorical, choices: [adabn, both]}\n"
        "  ema_lambda: {type: float, low: 0.5, high: 1.0}\n"
    )
    proc = _run_fast("--corpora-dir", corpora_dir, "--space", space, "--out", tmp_path / "o")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        f"sweep: error: {space}: params.bn = 'both': bn 'both' is not one of "
        "separate, joint, adabn, dsbn"
    )
    space.write_text(SMOKE.read_text() + "  ema_lambda: {type: float, low: 0.5, high: 1.0}\n")
    proc = _run_fast("--corpora-dir", corpora_dir, "--space", space, "--out", tmp_path / "o")
    assert (
        proc.returncode == 2
        and "params.ema_lambda = 1.0: ema_lambda must be in [0, 1)" in proc.stderr
    )


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, corpora_dir):
    out = tmp_path / "out"
    proc = _run_fast(
        "--corpora-dir", corpora_dir, "--space", SMOKE, "--budget", 3, "--out", out, "--dry-run"
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    # smoke: 2 scenarios x 1 seed, 2 epochs; 3 configs -> 6 units
    assert line.startswith("plan: 3 configs x 2 units (scenario x seed) = 6 units of 2 epochs;"), (
        line
    )
    assert "at most ~" in line and not out.exists() and "started a local Ray" not in proc.stdout


def test_saved_settings_resolve_relative_paths_from_the_sweep_folder(tmp_path, monkeypatch):
    """An older sweep.json with paths relative to where it was started: resume from elsewhere."""
    sys.path.insert(0, str(ROOT / "sweep"))
    from run import saved_settings

    out = tmp_path / "runs" / "x"
    out.mkdir(parents=True)
    (out / "spaces").mkdir()
    (out / "spaces" / "s.yaml").write_text("method: emodna\n")
    (out / "sweep.json").write_text(
        json.dumps({"space": "spaces/s.yaml", "corpora_dir": str(tmp_path), "cache": None})
    )
    monkeypatch.chdir(
        tmp_path
    )  # spaces/s.yaml does not exist here, but does under the sweep folder
    got = saved_settings(out)
    assert got["space"] == str(out / "spaces" / "s.yaml") and got["corpora_dir"] == str(tmp_path)


def test_sweep_json_records_portable_paths_and_the_sweep_keeps_a_copy_of_its_space(
    tmp_path, monkeypatch
):
    """Paths inside the sweep folder or the repository are relative to it (a copied or
    committed folder carries no machine's paths); the space file is copied into the folder,
    and a resume reads the copy, with one line when the file on disk has changed since."""
    import argparse

    from sweep.inputs import resume_space, saved_settings, write_settings

    out = tmp_path / "runs" / "x"
    (out / "cache").mkdir(parents=True)
    args = argparse.Namespace(
        space=SMOKE, corpora_dir=tmp_path / "corpora", cache=out / "cache", out=out, budget=2
    )
    write_settings(out, args)
    data = json.loads((out / "sweep.json").read_text())
    assert data["space"] == "search_spaces/smoke.yaml" and data["cache"] == "cache"
    assert data["corpora_dir"] == str(tmp_path / "corpora") and data["budget"] == 2
    assert data["space_copy"] == "space.yaml"
    assert (out / "space.yaml").read_bytes() == SMOKE.read_bytes()
    monkeypatch.chdir(tmp_path)  # resumed from another folder
    saved = saved_settings(out)
    assert saved["space"] == str(SMOKE) and saved["cache"] == str(out / "cache")
    assert resume_space(out, saved) == (out / "space.yaml", None)

    mine = tmp_path / "mine.yaml"  # a space outside the repository: its absolute path
    shutil.copy(SMOKE, mine)
    write_settings(out, argparse.Namespace(space=mine, out=out))
    assert json.loads((out / "sweep.json").read_text())["space"] == str(mine)
    mine.write_text("method: no-such-method\n")  # edited (here: broken) after the start
    space, note = resume_space(out, saved_settings(out))
    assert space == out / "space.yaml" and space.read_bytes() == SMOKE.read_bytes()
    assert note.count("\n") == 0 and f"{mine} differs from the copy" in note
    assert "start a new sweep" in note


def test_lock_names_the_holder_and_a_stale_lock_is_taken_over(tmp_path):
    from sweep.lock import LOCK, SweepLock

    first = SweepLock(tmp_path)
    assert first.acquire() is None
    with pytest.raises(
        Exception, match=rf"another sweep is running in this folder \(host .*, PID {os.getpid()},"
    ):
        SweepLock(tmp_path).acquire()
    first.release()
    # a lock file left by a process that died: its flock is gone, its words remain
    (tmp_path / LOCK).write_text(json.dumps({"host": "h", "pid": 999999, "started": "yesterday"}))
    second = SweepLock(tmp_path)
    assert second.acquire() == (
        "took over the lock of a sweep that is no longer running "
        "(host h, PID 999999, started yesterday)"
    )
    second.release()


@pytest.mark.slow
@pytest.mark.corpora
def test_two_sweeps_one_folder_then_sigint_and_sigterm_stop_cleanly(
    tmp_path, corpora_dir, warm_cache
):
    """A second sweep on a busy --out exits 2 naming the first; SIGINT stops the first with 130
    and the resume command; a resume stopped by SIGTERM exits 143; no native stack dumps."""
    out = tmp_path / "sweep"
    log = tmp_path / "first.log"
    first = start_sweep(log, *smoke_args(corpora_dir, warm_cache, 6, 2, out))
    try:
        deadline = time.monotonic() + 120
        while (
            "units (scenario x seed)" not in log.read_text() or not (out / ".sweep.lock").exists()
        ):
            assert first.poll() is None and time.monotonic() < deadline, tail(log)
            time.sleep(0.5)
        second = _run_fast(*smoke_args(corpora_dir, warm_cache, 6, 2, out))
        assert second.returncode == 2, second.stderr
        assert "another sweep is running in this folder (host" in second.stderr
        assert f"PID {first.pid}," in second.stderr
        while "started a local Ray" not in log.read_text():
            assert time.monotonic() < deadline, tail(log)
            time.sleep(0.5)
        time.sleep(15)  # trials under way
        os.kill(first.pid, signal.SIGINT)
        assert first.wait(timeout=90) == 130, tail(log)
    finally:
        kill_session(first.pid)
    text = log.read_text()
    assert f"resume with: python sweep/run.py --out {out} --resume" in text
    assert "Tuner.restore" not in text and "AbslFailureSignalHandler" not in text

    log2 = tmp_path / "resume.log"
    resumed = start_sweep(log2, "--out", out, "--resume")
    try:
        deadline = time.monotonic() + 120
        while "resuming" not in log2.read_text():
            assert resumed.poll() is None and time.monotonic() < deadline, tail(log2)
            time.sleep(0.5)
        time.sleep(5)
        os.killpg(resumed.pid, signal.SIGTERM)  # the whole group, as `timeout` or a scheduler does
        assert resumed.wait(timeout=90) == 143, tail(log2)
    finally:
        kill_session(resumed.pid)
    text = log2.read_text()
    assert "SIGTERM: stopping" in text and f"--out {out} --resume" in text
    assert "AbslFailureSignalHandler" not in text


@pytest.mark.slow
@pytest.mark.corpora
def test_a_sweep_where_every_trial_fails_exits_1(tmp_path, corpora_dir, warm_cache, monkeypatch):
    faults = ",".join(f"{s}@1" for s in ("EMODB-CASIA-arousal", "CASIA-EMODB-arousal"))
    monkeypatch.setenv("EMODNA_SWEEP_FAULT", faults)
    log = tmp_path / "log"
    code = run_sweep(
        log, *smoke_args(corpora_dir, warm_cache, 1, 1, tmp_path / "o", "--max-failures", 0)
    )
    assert code == 1, tail(log)
    assert "every trial failed" in log.read_text()


@pytest.mark.slow
@pytest.mark.corpora
def test_gpu_trials_on_a_cluster_without_gpus_exit_2_naming_the_flag(tmp_path, corpora_dir):
    out = tmp_path / "gpu"
    argv = ["--corpora-dir", corpora_dir, "--space", SMOKE, "--budget", 1, "--out", out]
    proc = _run_fast(*argv, "--gpus-per-trial", "0.25")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "sweep: error: --gpus-per-trial 0.25: the Ray cluster has no GPU; add GPU nodes "
        "(cluster/aws.yaml has a GPU worker type) or drop the flag"
    )
    assert not (out / "trials.parquet").exists()


def test_trial_resources_give_gpus_to_the_deep_methods_only():
    from sweep.trainable import trial_resources

    gpu = trial_resources(1.0, 0.25)
    assert gpu({"method": "emodna"}).bundles == [{"CPU": 1.0, "GPU": 0.25}]
    assert gpu({"method": "functionals_lr"}).bundles == [{"CPU": 1.0}]  # never waits for a GPU
    assert trial_resources(2.0, 0.0)({"method": "emodna"}).bundles == [{"CPU": 2.0}]


@pytest.mark.slow
@pytest.mark.corpora
def test_half_a_gpu_per_trial_runs_two_trials_at_once_on_one_gpu(tmp_path, corpora_dir, warm_cache):
    """Real Ray scheduling: a local Ray declared with one GPU and a space's gpus_per_trial 0.5
    runs the two units side by side, each told GPU 0 by Ray. The space asks for device cpu
    (this machine has no GPU): an explicit cpu trains on the CPU, where device auto would fail
    at once."""
    space = tmp_path / "gpu.yaml"
    space.write_text(
        SMOKE.read_text()
        .replace("epochs: 2", "epochs: 1\ngpus_per_trial: 0.5")
        .replace("fixed:", "fixed:\n  device: cpu")
    )
    out, log = tmp_path / "gpu", tmp_path / "gpu.log"
    args = sweep_args(corpora_dir, warm_cache, space, 1, out, "--num-gpus", 1)
    assert run_sweep(log, *args) == 0, tail(log)
    assert "started a local Ray: 2 CPUs, 1 GPUs" in log.read_text()
    trials = pd.read_parquet(out / "trials.parquet")
    assert list(trials["status"]) == ["completed"] * 2
    assert list(trials["gpu_ids"]) == ["0", "0"] and list(trials["device"]) == ["cpu", "cpu"]
    spans = []  # (start, end) of each trial from Tune's own result.json
    for result in out.glob("*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines()]
        spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"]))
    (a0, a1), (b0, b1) = sorted(spans)
    assert b0 < a1, f"the two trials ran one after the other: {spans}"


@pytest.mark.slow
@pytest.mark.corpora
def test_a_trial_given_a_gpu_torch_cannot_see_fails_naming_the_node(
    tmp_path, corpora_dir, warm_cache
):
    """device auto on a GPU slot of a node whose torch sees no GPU: never a silent CPU run."""
    import socket

    space = tmp_path / "gpu.yaml"
    space.write_text(SMOKE.read_text().replace("epochs: 2", "epochs: 1\ngpus_per_trial: 0.5"))
    out, log = tmp_path / "gpu", tmp_path / "gpu.log"
    args = sweep_args(corpora_dir, warm_cache, space, 1, out, "--num-gpus", 1, "--max-failures", 0)
    assert run_sweep(log, *args) == 1, tail(log)  # every trial failed
    trials = pd.read_parquet(out / "trials.parquet")
    assert list(trials["status"]) == ["error"] * 2
    for error in trials["error"]:
        assert f"device cuda: torch sees 0 GPU(s) on node {socket.gethostname()}" in error
