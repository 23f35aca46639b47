"""Find and read emotional-speech corpora: audio files -> (path, emotion, speaker, gender).

A *corpora folder* holds one subfolder per corpus, named after it (case-insensitive):
``DATA/EMODB``, ``DATA/casia``, ``DATA/CREMA-D`` ... (:func:`find_corpora`). A subfolder
named after an official corpus is read by its reader (``emodna.official``); any other is read
as a manifest corpus (it holds ``manifest.csv``) or as a folder-per-emotion corpus
(``emodna.custom``), under its folder name. :func:`read_corpus` reads one folder,
:func:`load_corpora` a corpora folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emodna.corpus import Corpus
from emodna.custom import has_emotion_folders, manifest_in, read_emotion_folders, read_manifest
from emodna.errors import CorpusError
from emodna.official import LAYOUTS, READERS


def _key(name: str) -> str:
    """Folder or corpus name without case and separators: "Crema_D" -> "cremad"."""
    return re.sub(r"[\s_.-]+", "", name.lower())


# Accepted spellings: each canonical name without case/separators, plus these.
ALIASES: dict[str, str] = {_key(name): name for name in READERS}
ALIASES["iemocapfullrelease"] = "IEMOCAP"  # the folder name of the official release


def canonical_name(name: str) -> str:
    """The canonical corpus name of a spelling: "emo-db" -> "EMODB", "crema_d" -> "CREMA-D";
    a name no reader knows (a manifest or folder-per-emotion corpus) is kept as it is."""
    return ALIASES.get(_key(str(name)), str(name))


def survey_corpora(corpora_dir: str | Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """({name: folder} of every readable corpus, [(folder, why it cannot be read)]).

    Known corpora by their canonical names (the official readers' order), then manifest
    and folder-per-emotion corpora by their folder names."""
    corpora_dir = Path(corpora_dir).expanduser()
    if not corpora_dir.is_dir():
        raise CorpusError(
            f"corpora folder {corpora_dir} does not exist; give a folder with one subfolder "
            f"per corpus ({', '.join(READERS)})"
        )
    subfolders = sorted(
        p for p in corpora_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    known: dict[str, Path] = {}
    custom: dict[str, Path] = {}
    skipped: list[tuple[Path, str]] = []
    for folder in subfolders:
        canonical = ALIASES.get(_key(folder.name))
        if canonical is not None:
            if canonical in known:
                raise CorpusError(
                    f"corpora folder {corpora_dir} has two folders for {canonical}: "
                    f"{known[canonical].name} and {folder.name}; keep one"
                )
            known[canonical] = folder
        elif manifest_in(folder) is not None or has_emotion_folders(folder):
            custom[folder.name] = folder
        else:
            skipped.append(
                (
                    folder,
                    "not a known corpus, no manifest.csv, no folder named after an "
                    "emotion; add a manifest.csv (path, emotion, speaker) or sort its clips "
                    "into emotion folders (Angry/, Neutral/, ...)",
                )
            )
    found = {name: known[name] for name in READERS if name in known}
    found.update(custom)
    return found, skipped


def find_corpora(corpora_dir: str | Path) -> dict[str, Path]:
    """{name: folder} for the readable corpora in corpora_dir (:func:`survey_corpora`)."""
    found, skipped = survey_corpora(corpora_dir)
    if not found:
        seen = ", ".join(p.name for p, _ in skipped)
        raise CorpusError(
            f"corpora folder {corpora_dir} holds no corpus"
            + (f" (subfolders: {seen})" if seen else " (no subfolders)")
            + f"; name each corpus folder one of {', '.join(READERS)}, or give it a "
            "manifest.csv, or emotion folders"
        )
    return found


def read_corpus(name: str, root: str | Path, speaker_pattern: str | None = None) -> Corpus:
    """Read one corpus folder; CorpusError if it is missing or no file name parses.

    ``speaker_pattern``: for a folder-per-emotion corpus, a regular expression whose first
    group, searched in each file's path below the corpus folder, is the speaker (e.g.
    ``^(spk\\d+)/`` or ``_(\\w+)\\.wav$``); without it, speakers are unknown."""
    name = canonical_name(name)
    root = Path(root).expanduser()
    if name not in READERS or root.is_file() or (root.is_dir() and manifest_in(root) is not None):
        # a manifest (it wins over a reader's file names), or emotion folders
        if root.is_file():
            corpus = read_manifest(name, root)
        elif manifest_in(root) is not None:
            corpus = read_manifest(name, manifest_in(root))
        elif root.is_dir():
            corpus = read_emotion_folders(name, root, speaker_pattern)
        else:
            raise CorpusError(
                f"{name}: {root} does not exist; give a corpus folder or a manifest file"
            )
        if not corpus.utterances:
            raise CorpusError(
                f"{name} folder {root}: no audio file under a folder named after an emotion; "
                "add a manifest.csv (path, emotion, speaker) or sort the clips into emotion folders"
            )
        return corpus
    if not root.is_dir():
        raise CorpusError(f"{name} folder {root} does not exist; expected {LAYOUTS[name]}")
    # Absolute paths: the feature cache is keyed by them, whatever the working directory.
    root = root.resolve()
    corpus = READERS[name](root)
    if not corpus.utterances:
        if corpus.unparsed:
            path, reason = corpus.unparsed[0]
            seen = (
                f"none of its {len(corpus.unparsed)} audio files parses "
                f"(e.g. {path.relative_to(root)}: {reason})"
            )
        else:
            seen = "it holds no labelled audio files"
        raise CorpusError(f"{name} folder {root}: {seen}; expected {LAYOUTS[name]}")
    return corpus


def load_corpora(
    corpora_dir: str | Path | None = None,
    *,
    paths: dict[str, Path] | None = None,
    names: Sequence[str] | None = None,
    speaker_pattern: str | None = None,
) -> dict[str, Corpus]:
    """Read corpora found in corpora_dir and/or given as {name: folder} in paths (which win).

    names, if given, picks which corpora to read (in that order); otherwise all found.
    """
    if corpora_dir is None and not paths:
        raise CorpusError(
            "no corpora given; pass a corpora folder (one subfolder per corpus) or paths"
        )
    found: dict[str, Path] = {}
    if corpora_dir is not None:
        found.update(find_corpora(corpora_dir))
    for name, root in (paths or {}).items():
        found[canonical_name(name)] = Path(root)

    if names is None:
        selected = list(found)
    else:
        selected = []
        by_key = {_key(n): n for n in found}
        for name in names:
            canonical = by_key.get(_key(canonical_name(name)), canonical_name(name))
            if canonical not in found:
                raise CorpusError(
                    f"corpus {name!r} was not found; corpora found: {', '.join(found)}"
                    + (f" in {corpora_dir}" if corpora_dir is not None else "")
                )
            if canonical not in selected:
                selected.append(canonical)
    return {name: read_corpus(name, found[name], speaker_pattern) for name in selected}
