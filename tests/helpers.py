"""Helpers the test modules share: paths, sweeps in their own process session, the emodna
command, synthetic domains. Fixtures are in ``conftest.py``."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from emodna.train import Domain

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "sweep" / "run.py"


def session_pids(sid: int) -> list[int]:
    """Live (not zombie) processes of the session ``sid``: a sweep driver and its Ray."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getsid(pid) != sid:
                continue
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            pids.append(pid)
    return pids


def kill_session(sid: int, timeout: float = 30.0) -> None:
    """SIGKILL every process of the session ``sid`` (the driver, Ray's head and workers)."""
    deadline = time.monotonic() + timeout
    while pids := session_pids(sid):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of session {sid} survived SIGKILL: {pids}")
        time.sleep(0.2)


def sweep_cmd(*args) -> list[str]:
    return [sys.executable, str(RUN), *map(str, args), "--address", "local", "--num-cpus", "2"]


def start_sweep(log: Path, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "ab") as f:
        return subprocess.Popen(
            sweep_cmd(*args),
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def run_sweep(log: Path, *args, timeout: float = 300) -> int:
    """Run a sweep to its end; whatever happens, leave none of its processes behind."""
    proc = start_sweep(log, *args)
    try:
        return proc.wait(timeout=timeout)
    finally:
        kill_session(proc.pid)
        proc.wait()


def tail(log: Path, n: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def emodna_command() -> list[str]:
    script = Path(sys.executable).with_name("emodna")
    return [str(script)] if script.exists() else [sys.executable, "-m", "emodna.cli"]


def load_bench(name: str):
    """``bench/<name>.py`` as a module, imported with ``bench/`` on the path while it loads
    (its scripts import their siblings by name, as they do when run)."""
    bench = Path(__file__).resolve().parents[1] / "bench"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", bench / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.append(str(bench))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(bench))
    return module


def domain(
    n: int, seed: int, shift: float = 0.0, signal: float = 1.5, n_mfcc: int = 40, frames: int = 24
) -> Domain:
    """Gaussian noise with a class signal on the first 10 coefficients; ``shift`` moves the corpus."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int64)
    x = rng.normal(size=(n, n_mfcc, frames)).astype(np.float32)
    x[y == 1, :10] += signal
    x += shift
    x.setflags(write=False)  # like the Parquet / object-store arrays fit gets in real use
    return Domain(x, y, f"synthetic{seed}")


# --------------------------------------------------------------------------- audio


def write_tone(path, seconds=0.5, sr=16000, channels=1, freq=220.0):
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        y = np.stack([y] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr)


FOLDERS = {"anger": "Angry", "happiness": "Happy", "neutral": "Neutral", "sadness": "Sad"}


def cut(src, dst, seconds: float = 1.0) -> None:
    """The first ``seconds`` of a real clip, written as a new file (FLAC or WAV by suffix)."""
    y, sr = sf.read(src, frames=int(seconds * 16000), dtype="float32")
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, y, sr)


def clips(real_corpora, corpus: str, per_emotion: int):
    """(utterance, emotion) pairs of one shipped corpus: the first few of four emotions."""
    out = []
    for emotion in FOLDERS:
        out += [u for u in real_corpora[corpus].utterances if u.emotion == emotion][:per_emotion]
    return out
