"""Corpora this package has no reader for: a manifest file, or one folder per emotion.

A **manifest** is a CSV or Parquet file, one row per clip, paths relative to the file::

    path,emotion,speaker,gender
    clips/0001.wav,angry,spk01,female
    clips/0002.wav,neutral,spk02,male

``path``, ``emotion`` and ``speaker`` are required (``speaker`` may be empty: unknown),
``gender``, ``language`` and ``duration`` are optional. Emotion words go through the same
vocabulary as the official corpora (``emodna.labels``: "Angry", "happy", "calm" ...).
A corpus is given as ``--corpus-path NAME=manifest.csv`` or as a folder holding
``manifest.csv`` (or ``manifest.parquet``).

A **folder-per-emotion** corpus has no manifest: every audio file takes its emotion from
the nearest folder above it (at any depth) whose name is an emotion word
(``Urdu/Angry/SM1_F10_A010.wav``, ``Turkish/Sound Source/Calm/x.wav``). The speaker is
unknown unless ``speaker_pattern`` (a regex with one group, matched against the path
relative to the corpus folder) says where it is.

Every problem is a :class:`~emodna.errors.CorpusError` naming the file and, for a
manifest, the row; :func:`write_manifest` writes what was inferred, to check and edit.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import soundfile as sf

from emodna.corpus import Corpus, Utterance, audio_files
from emodna.errors import CorpusError, LabelError
from emodna.labels import EMOTIONS, normalize_emotion

MANIFEST_NAMES = ("manifest.csv", "manifest.parquet")
REQUIRED = ("path", "emotion", "speaker")
OPTIONAL = ("gender", "language", "duration")
GENDERS = {"f": "female", "female": "female", "w": "female", "m": "male", "male": "male"}


def manifest_in(folder: Path) -> Path | None:
    """The manifest file of a corpus folder, if it has one."""
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _emotion(word: str) -> str | None:
    try:
        return normalize_emotion(word)
    except LabelError:
        return None


def _gender(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return GENDERS.get(str(value).strip().lower())


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet table, or a CSV with every column read as text (OSError, ValueError)."""
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)


def read_manifest(name: str, manifest: Path):
    """A Corpus from a manifest file; CorpusError naming the file and row on bad input."""

    manifest = Path(manifest).expanduser().resolve()
    try:
        table = read_table(manifest)
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{manifest}: cannot read the manifest ({exc})") from exc
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise CorpusError(
            f"{manifest}: missing column(s) {', '.join(missing)}; a manifest has columns "
            f"{', '.join(REQUIRED)} (speaker may be empty) and optionally {', '.join(OPTIONAL)}"
        )
    row_of = lambda i: i + 2  # noqa: E731 - the CSV line (header is line 1)
    dup = table["path"].duplicated(keep=False)
    if dup.any():
        first = table.index[dup][0]
        raise CorpusError(
            f"{manifest}: row {row_of(first)}: path {table.loc[first, 'path']!r} is listed "
            f"{int((table['path'] == table.loc[first, 'path']).sum())} times; keep one row per clip"
        )
    unknown = sorted({str(w) for w in table["emotion"] if _emotion(str(w)) is None})
    if unknown:
        first = table.index[table["emotion"].astype(str).isin(unknown)][0]
        raise CorpusError(
            f"{manifest}: row {row_of(first)}: unknown emotion word(s) {', '.join(map(repr, unknown))}; "
            f"rename them in the manifest to one of {', '.join(EMOTIONS)} (common spellings such "
            "as Angry, happy, sad, calm are understood)"
        )
    corpus = Corpus(name=name, root=manifest.parent)
    for i, r in table.iterrows():
        path = (manifest.parent / str(r["path"])).resolve()
        if not path.is_file():
            raise CorpusError(
                f"{manifest}: row {row_of(i)}: no such file {path}; paths are relative to the manifest"
            )
        speaker = r["speaker"]
        speaker = "" if speaker is None or pd.isna(speaker) else str(speaker)
        gender = _gender(r["gender"]) if "gender" in table.columns else None
        corpus.utterances.append(
            Utterance(path, normalize_emotion(str(r["emotion"])), speaker, gender)
        )
    corpus.utterances.sort(key=lambda u: u.path)
    return corpus


def read_emotion_folders(name: str, root: Path, speaker_pattern: str | None = None):
    """A Corpus from a folder whose subfolders (at any depth) are named after emotions."""

    root = Path(root).expanduser().resolve()
    try:
        pattern = re.compile(speaker_pattern) if speaker_pattern else None
    except re.error as exc:
        raise CorpusError(
            f"--speaker-pattern '{speaker_pattern}': not a regular expression ({exc}); "
            "write one whose first group is the speaker, e.g. '^(spk\\d+)/'"
        ) from None
    if pattern is not None and pattern.groups < 1:
        raise CorpusError(
            f"--speaker-pattern '{speaker_pattern}' has no group; put the speaker in "
            "parentheses, e.g. '^(spk\\d+)/'"
        )
    corpus = Corpus(name=name, root=root)
    for path in audio_files(root):
        rel = path.relative_to(root)
        emotion = next((e for e in map(_emotion, reversed(rel.parts[:-1])) if e is not None), None)
        if emotion is None:
            corpus.unparsed.append((path, "no folder above it is named after an emotion"))
            continue
        speaker = ""
        if pattern is not None:
            m = pattern.search(rel.as_posix())
            speaker = m.group(1) if m else ""
        corpus.utterances.append(Utterance(path, emotion, speaker, None))
    return corpus


def has_emotion_folders(root: Path) -> bool:
    """Whether some subfolder of root, at any depth, is named after an emotion."""
    return any(p.is_dir() and _emotion(p.name) is not None for p in Path(root).rglob("*"))


def write_manifest(corpus, folder: Path) -> Path:
    """Write ``folder/<corpus>.csv``, the manifest of what was read (paths relative to it)."""
    import os

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{corpus.name}.csv"
    rows = [
        {
            "path": os.path.relpath(u.path, folder),
            "emotion": u.emotion,
            "speaker": u.speaker,
            "gender": u.gender or "",
        }
        for u in corpus.utterances
    ]
    pd.DataFrame(rows, columns=["path", "emotion", "speaker", "gender"]).to_csv(out, index=False)
    return out


MIN_FILES = 20  # below this a corpus says so: its scores move by 5 points per clip


def task_problem(corpus, task: str, mapping: dict | None = None) -> str | None:
    """Why ``corpus`` cannot be a source or target for ``task`` (one class only), or None."""
    from emodna.labels import CLASSES, task_label

    classes = {task_label(u.emotion, task, mapping) for u in corpus.utterances}
    if len(classes) < 2:
        only = ", ".join(sorted(classes)) or "none"
        return (
            f"{corpus.name} ({corpus.root}) has only {task} class {only} (of "
            f"{', '.join(CLASSES[task])}); it cannot be used for {task}"
        )
    return None


def corpus_warnings(corpus) -> list[str]:
    """One-line warnings about a corpus that can be used but may mislead: too few files, or
    clips recorded at several sample rates (each is resampled, but a clip recorded at 8 kHz
    has no energy above 4 kHz, which a model can learn as a cue)."""
    out = []
    n = len(corpus.utterances)
    if n < MIN_FILES:
        out.append(
            f"{corpus.name} ({corpus.root}) has {n} files (< {MIN_FILES}): its scores are coarse"
        )
    rates: Counter = Counter()
    example: dict[int, Path] = {}
    for u in corpus.utterances:
        try:
            rate = sf.info(str(u.path)).samplerate
        except Exception:
            continue  # an undecodable file is reported by the feature extraction
        rates[rate] += 1
        example.setdefault(rate, u.path)
    if len(rates) > 1:
        common = rates.most_common()
        odd = common[-1][0]
        counts = ", ".join(f"{r} Hz: {c} files" for r, c in common)
        out.append(
            f"{corpus.name} mixes sample rates ({counts}; e.g. {example[odd]}); every clip is "
            "resampled, but band limits differ: check the odd ones or drop them from the corpus"
        )
    return out
