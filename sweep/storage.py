"""Optuna storage from what a user types: a URL or a file path (no Ray here: the
summarizer reads studies without it)."""

from __future__ import annotations

import os
from pathlib import Path

import optuna

from emodna.errors import ConfigError

JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def open_storage(
    storage: str | os.PathLike | None, create: bool = True
) -> optuna.storages.BaseStorage | str | None:
    """An Optuna storage from a URL or path.

    ``None``: in memory (nothing survives the process). A path ending in .log, .jsonl or
    .journal: a :class:`JournalStorage` over a :class:`JournalFileBackend` (works on shared
    file systems). A path ending in .db/.sqlite/.sqlite3: SQLite. Anything with ``://``: an
    RDB URL (``sqlite:///runs/x/study.db``, ``postgresql://...``). With ``create`` (the
    sweep), the folder of a file storage is made; a reader (the summarizer) passes False.
    """
    if storage is None:
        return None
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    text = os.fspath(storage)
    if "://" in text:
        if text.startswith("sqlite:///"):
            db = text[len("sqlite:///") :]
            if create and db and db != ":memory:":
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return text
    path = Path(text).expanduser()
    if create and path.suffix in (*JOURNAL_SUFFIXES, *SQLITE_SUFFIXES):
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in JOURNAL_SUFFIXES:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(path)))
    if path.suffix in SQLITE_SUFFIXES:
        return f"sqlite:///{path.resolve()}"
    raise ConfigError(
        f"storage: {text!r} is neither a database URL nor a journal file; use e.g. "
        "sqlite:///runs/x/study.db, a path ending in .db, or a path ending in .log/.jsonl"
    )
