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

from emodna.atomic import atomic_write
from emodna.errors import ConfigError
from sweep import SETTINGS, SPACE
from sweep.space import load_space

REPO = Path(__file__).resolve().parents[1]  # the checkout sweep/run.py runs from
PATH_KEYS = ("space", "corpora_dir", "cache", "out")  # the paths sweep.json records


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


def portable(path, out: Path, repo: Path = REPO) -> str:
    """``path`` as sweep.json records it: relative to the sweep folder or else the
    repository when inside it (so a copied or committed folder carries no machine's absolute
    paths), absolute otherwise."""
    path = Path(path).expanduser().resolve()
    for base in (Path(out).resolve(), Path(repo).resolve()):
        if path != base and path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return str(path)


def locate(value: str, out: Path, repo: Path = REPO) -> str:
    """A path sweep.json recorded, absolute: a relative one from the sweep folder, the
    repository or the working folder, the first where it exists (the sweep folder when none)."""
    if Path(value).is_absolute():
        return value
    for base in (Path(out), Path(repo), Path.cwd()):
        if (base / value).exists():
            return str((base / value).resolve())
    return str((Path(out) / value).resolve())


def write_settings(out: Path, args) -> None:
    """sweep.json (the driver's arguments, paths made :func:`portable`) and ``space.yaml``,
    a copy of the space file, so that --resume and the summary read the space the sweep ran
    with even after the file is edited."""
    space = Path(args.space).resolve()
    copy = Path(out) / SPACE
    if space != copy.resolve():
        data = space.read_bytes()
        atomic_write(copy, lambda tmp: Path(tmp).write_bytes(data))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    for key in PATH_KEYS:
        if settings.get(key):
            settings[key] = portable(settings[key], out)
    settings["space_copy"] = SPACE
    text = json.dumps(settings, indent=2)
    atomic_write(Path(out) / SETTINGS, lambda tmp: Path(tmp).write_text(text))


def saved_settings(out: Path) -> dict:
    """sweep.json of a sweep to resume, its relative paths (see :func:`portable`; older
    sweeps: relative to where they started) resolved by :func:`locate`."""
    settings = json.loads((out / SETTINGS).read_text())
    for key in PATH_KEYS:
        if settings.get(key):
            settings[key] = locate(settings[key], out)
    return settings


def resume_space(out: Path, settings: dict) -> tuple[Path, str | None]:
    """The space file a resumed sweep reads: the copy in the sweep folder (the recorded path
    for sweeps older than the copy), and a line to print when the file on disk differs."""
    copy = Path(out) / settings.get("space_copy", SPACE)
    recorded = Path(settings["space"]) if settings.get("space") else None
    if not copy.is_file():
        if recorded is None:
            raise ConfigError(f"{out}: its {SETTINGS} names no space file; start a new sweep")
        return recorded, None
    if recorded is not None and recorded.is_file() and recorded.read_bytes() != copy.read_bytes():
        return copy, (
            f"note: {recorded} differs from the copy this sweep started with; resuming with "
            f"{copy} (to sweep the edited file, start a new sweep in another --out)"
        )
    return copy, None
