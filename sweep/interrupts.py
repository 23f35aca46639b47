"""Stopping a sweep cleanly: SIGINT/SIGTERM become Tune's own stop, then a resume hint and
exit 128 + the signal (:class:`Interrupts`); :func:`units_done` counts what a resume keeps."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from sweep import TRIALS
from sweep.lock import SweepLock


def units_done(out: Path) -> int:
    path = out / TRIALS
    if not path.exists():
        return 0
    import pandas as pd

    t = pd.read_parquet(path, columns=["status"])
    return int(t["status"].isin(["completed", "diverged"]).sum())


class Interrupts:
    """SIGINT and SIGTERM stop the sweep the way Ctrl-C stops Tune: Tune saves its state and
    returns. Both are turned into SIGUSR1, which Tune always handles that way (its SIGINT
    handler is switched off so that ours sees which signal came); ``signal`` says which.

    A signal sent to the whole process group (a terminal's Ctrl-C, ``timeout``, a batch
    scheduler) also reaches the embedded Ray's own processes, and Tune can then wait a
    minute for a GCS that is gone. So a watchdog ends the driver ``GRACE_S`` seconds after
    the signal: what Tune saved after the last finished epoch is what ``--resume`` needs.
    """

    GRACE_S = 20.0

    def __init__(self, out: Path, total_units: int, lock: SweepLock | None = None):
        self.out, self.total_units, self.lock = out, total_units, lock
        self.signal: int | None = None
        self._reported = threading.Lock()

    def install(self) -> None:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init: replaces Ray's native dumps
            signal.signal(sig, self._handle)
        # Tune's own words for it, a warning and a Tuner.restore() hint, are ours to say
        logging.getLogger("ray.tune.tune").addFilter(
            lambda r: "interrupted" not in r.getMessage() and "Stop signal" not in r.getMessage()
        )

    def _handle(self, sig, frame) -> None:
        if self.signal is not None:
            return
        self.signal = sig
        print(f"\n{signal.Signals(sig).name}: stopping; Tune saves its state ...", flush=True)
        threading.Timer(self.GRACE_S, self.exit).start()
        os.kill(os.getpid(), signal.SIGUSR1)

    def exit(self) -> None:
        """Print how to resume, shut Ray down (at most 10 s) and end with 128 + the signal."""
        if not self._reported.acquire(blocking=False):
            return
        print(
            f"interrupted: {units_done(self.out)}/{self.total_units} units done; resume with: "
            f"python sweep/run.py --out {self.out} --resume",
            flush=True,
        )
        import ray

        stopper = threading.Thread(target=ray.shutdown, daemon=True)
        stopper.start()
        stopper.join(10.0)
        if self.lock is not None:
            self.lock.release()
        sys.stderr.flush()
        os._exit(128 + int(self.signal))
