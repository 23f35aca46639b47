"""What a corpus is once read (:class:`Corpus` of :class:`Utterance`), and the walk over a
corpus folder that every reader shares (official layouts in ``emodna.official``, manifests
and emotion folders in ``emodna.custom``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from emodna.labels import normalize_emotion

# Every extension soundfile can read. RAW is left out: it needs its format given by hand.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    "." + fmt.lower() for fmt in soundfile.available_formats() if fmt != "RAW"
) | {".aif", ".wave"}


@dataclass(frozen=True)
class Utterance:
    path: Path
    emotion: str  # a name from labels.EMOTIONS
    speaker: str
    gender: str | None  # "female", "male", or None where the corpus does not tell


@dataclass
class Corpus:
    name: str  # canonical name, a key of READERS
    root: Path
    utterances: list[Utterance] = field(default_factory=list)  # sorted by path
    unparsed: list[tuple[Path, str]] = field(default_factory=list)  # (audio file, reason)


class Unparsed(Exception):
    """Raised by a parse function: this audio file's name does not follow the corpus's rules."""


# ---------------------------------------------------------------------------------------
# Walking a corpus folder
# ---------------------------------------------------------------------------------------


def audio_files(root: Path) -> list[Path]:
    """All audio files under root, sorted; hidden files and folders (".DS_Store",
    macOS "._x.wav" resource forks) are skipped."""
    files = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                files.append(Path(folder) / name)
    return sorted(files)


def collect(name: str, root: Path, parse: Callable[[Path], Utterance | None]) -> Corpus:
    """Parse every audio file under root. ``parse`` returns an Utterance, returns None for
    a file that is deliberately left out, or raises Unparsed with the reason."""
    corpus = Corpus(name=name, root=root)
    for path in audio_files(root):
        try:
            utterance = parse(path)
        except Unparsed as reason:
            corpus.unparsed.append((path, str(reason)))
            continue
        if utterance is not None:
            corpus.utterances.append(utterance)
    return corpus


def lookup(table: dict[str, str], code: str, what: str) -> str:
    """table[code], or Unparsed naming the code and the codes the corpus uses."""
    if code not in table:
        raise Unparsed(f"{what} {code!r} is not one of {', '.join(table)}")
    return normalize_emotion(table[code])
