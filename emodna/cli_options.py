"""Command-line options several ``emodna`` commands share (corpora, features, ``--set``), and
turning them into corpora, feature settings and config values."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from emodna.config import FRONTENDS
from emodna.errors import ConfigError, CorpusError


def add_corpora_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpora-dir",
        type=Path,
        default=os.environ.get("EMODNA_CORPORA_DIR"),
        help="folder whose subfolders are named after corpora (EMODB, CASIA, ...), "
        "case-insensitive; default $EMODNA_CORPORA_DIR",
    )
    p.add_argument(
        "--corpus-path",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="one corpus at an explicit path, e.g. EMODB=/data/emodb (repeatable)",
    )
    p.add_argument(
        "--speaker-pattern",
        metavar="REGEX",
        help="folder-per-emotion corpora: a regular expression whose first group, searched in "
        "each clip's path below its corpus folder, is the speaker, e.g. '^(spk\\d+)/'",
    )


def add_feature_options(p: argparse.ArgumentParser, frontends=FRONTENDS) -> None:
    p.add_argument(
        "--frontend",
        choices=frontends,
        default=None,
        help="input features: mfcc (the paper's, default), logmel, egemaps_lld (openSMILE "
        "eGeMAPSv02 per frame)"
        + (", egemaps (its 88 functionals per clip)" if "egemaps" in frontends else ""),
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="feature cache folder (default $EMODNA_CACHE or ~/.cache/emodna/features)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="processes for extraction (default: all cores)"
    )
    p.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="YAML file overriding the arousal/valence mapping",
    )


def add_speaker_options(p: argparse.ArgumentParser) -> None:
    """``emodna predict``: how the files given are grouped for the input normalisation: by
    declared speakers (``normalize: speaker`` models, emodna/grouping.py), all as one group
    (``--normalize-self``), or by default not at all (the target corpus's stored statistics)."""
    p.add_argument(
        "--normalize-self",
        action="store_true",
        help="normalise all the files given by their own statistics, as one group (default: "
        "the target corpus's stored statistics)",
    )
    p.add_argument(
        "--speaker",
        metavar="NAME",
        help="every file given is this one speaker: normalised by their statistics together",
    )
    p.add_argument(
        "--speaker-pattern",
        metavar="REGEX",
        help="a regular expression whose first group, searched in each file's path, is its "
        "speaker, e.g. '/(spk\\d+)/'; each speaker's files are normalised together",
    )
    p.add_argument(
        "--speakers",
        type=Path,
        metavar="FILE",
        help="a CSV or Parquet file with columns path (relative to its folder) and speaker",
    )


def add_compute_options(p: argparse.ArgumentParser) -> None:
    """Where and how a run computes: the device, bf16 or float32, the torch threads."""
    p.add_argument(
        "--device",
        help="auto (a CUDA GPU when torch sees one, else the CPU; the default), cpu, cuda, "
        "cuda:N; recorded in the result line, never part of what the config means",
    )
    p.add_argument(
        "--amp",
        choices=["auto", "off", "bf16"],
        help="mixed precision: bf16 runs the network under torch.autocast (the contrastive and "
        "MMD losses stay float32), off is float32; auto (the default): bf16 on a CPU with "
        "native bf16 (AVX512-BF16 / AMX), float32 elsewhere",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's, one per core); use 1 while a sweep runs on "
        "this machine, or both slow down many times. Scores depend slightly on it",
    )


def load_corpora_from_args(args, names=None):
    from emodna.corpora import load_corpora

    paths = {}
    for item in args.corpus_path:
        name, sep, path = item.partition("=")
        if not sep:
            raise CorpusError(
                f"--corpus-path {item!r}: write it as NAME=PATH, e.g. EMODB=/data/emodb"
            )
        paths[name] = Path(path)
    if args.corpora_dir is None and not paths:
        raise CorpusError("no corpora given: pass --corpora-dir DIR (or --corpus-path NAME=PATH)")
    return load_corpora(
        args.corpora_dir, paths=paths or None, names=names, speaker_pattern=args.speaker_pattern
    )


def feature_settings_from_args(args, cfg=None):
    """The features a command reads: ``--frontend``, else the config's, else the paper's."""
    from emodna.features import FeatureSettings

    if cfg is not None:
        return FeatureSettings.for_config(cfg)
    return FeatureSettings(frontend=args.frontend or "mfcc")


def parse_sets(items: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs as a dict, each value read as YAML (numbers, lists, words)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write it as KEY=VALUE, e.g. --set bn=adabn")
        out[key.strip()] = yaml.safe_load(value)
    return out
