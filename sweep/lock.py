"""One sweep per out folder at a time (docs/design.md, decision 11).

``SweepLock(out).acquire()`` takes an exclusive ``flock`` on ``out/.sweep.lock`` and writes
who holds it (host, PID, start time) into the file. A second sweep on the same folder gets a
ConfigError naming the holder. The kernel drops a ``flock`` when its process dies, so a lock
file left by a killed sweep is free to take: the new holder says whose stale lock it took.
(``flock`` holds between processes of one machine; over NFS it depends on the mount.)
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from emodna.errors import ConfigError

LOCK = ".sweep.lock"


def _describe(holder: dict) -> str:
    return (
        f"host {holder.get('host', '?')}, PID {holder.get('pid', '?')}, "
        f"started {holder.get('started', '?')}"
    )


class SweepLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self.fd: int | None = None

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> str | None:
        """Take the lock; return a message when a stale lock was taken over, else None."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"{self.path.parent}: another sweep is running in this folder ({_describe(self._read())}); "
                "wait for it to end, stop it, or pick another --out"
            ) from None
        stale = self._read()
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self.fd = fd
        if stale.get("pid"):
            return f"took over the lock of a sweep that is no longer running ({_describe(stale)})"
        return None

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
