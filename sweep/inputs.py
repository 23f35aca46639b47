"""What a sweep is asked to do, checked before Ray starts: the search space (every fixed
value and searched range through TrainConfig's validation), the corpora and the scenarios
they allow, the output folder, and the settings of a sweep to resume. Nothing here writes a
file or imports Ray or torch, so an input error exits in well under two seconds and leaves
no empty ``--out`` behind."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from emodna.errors import ConfigError
from sweep import SETTINGS
from sweep.space import load_space


def check_writable(out: Path) -> None:
    """``out`` can be made and written: its nearest existing folder takes a file. Creates
    nothing, so an input error found later leaves no empty ``--out`` behind."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{out}: output folder is not writable ({exc.strerror}); pick another --out"
        ) from exc


def check_values(space) -> None:
    """Every fixed value and both ends of every searched range (each choice of a categorical)
    through TrainConfig's own validation, before anything starts."""
    from emodna.config import TrainConfig

    where = str(space.path or "search space")
    for method in space.methods:
        base = {**space.fixed, "method": method, "epochs": space.epochs}
        TrainConfig.from_dict(base, origin=f"{where}: fixed")
        for name, p in space.params.items():
            if name == "method":
                continue
            if p.type == "categorical":
                values = list(p.choices)
            elif p.type == "list":
                values = [[p.low] * p.length, [p.high] * p.length]
            else:
                values = [p.low, p.high]
            for v in values:
                TrainConfig.from_dict({**base, name: v}, origin=f"{where}: params.{name} = {v!r}")


def read_inputs(args) -> tuple:
    """Space, corpora and scenarios, all checked; no Ray, no files written."""
    from emodna.config import METHODS, TRAIN_KEYS
    from emodna.corpora import load_corpora
    from emodna.custom import corpus_warnings, task_problem

    skipped: list[str] = []

    space = load_space(args.space, known_methods=list(METHODS), known_params=sorted(TRAIN_KEYS))
    if args.epochs is not None:  # --epochs overrides the space's
        space = dataclasses.replace(space, epochs=args.epochs)
    check_values(space)
    if args.corpora_dir is None:
        raise ConfigError("--corpora-dir is required: a folder with one subfolder per corpus")
    corpora = load_corpora(args.corpora_dir, speaker_pattern=args.speaker_pattern)
    scenarios = []
    for sc in space.scenarios(list(corpora)):  # a corpus with one class for a task sits it out
        problems = [task_problem(corpora[sc[end]], sc["task"]) for end in ("source", "target")]
        problem = next((p for p in problems if p is not None), None)
        if problem is None:
            scenarios.append(sc)
        elif problem not in skipped:
            skipped.append(problem)
    for problem in skipped:
        print(f"skipping its scenarios: {problem}", flush=True)
    if not scenarios:
        raise ConfigError(f"{args.space}: no scenario left to run: {'; '.join(skipped)}")
    for corpus in corpora.values():
        for line in corpus_warnings(corpus):
            print(f"warning: {line}", flush=True)
    needed = sorted({s["source"] for s in scenarios} | {s["target"] for s in scenarios})
    return space, {n: corpora[n] for n in needed}, scenarios


def saved_settings(out: Path) -> dict:
    """sweep.json of a sweep to resume; relative paths (older sweeps) resolved from here or
    from the sweep folder, whichever exists."""
    settings = json.loads((out / SETTINGS).read_text())
    for key in ("space", "corpora_dir", "cache"):
        value = settings.get(key)
        if value and not Path(value).is_absolute():
            here, there = Path(value).resolve(), (out / value).resolve()
            settings[key] = str(here if here.exists() or not there.exists() else there)
    return settings
