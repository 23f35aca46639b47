"""The ``emodna`` command line: one sub-command per step of a user's day.

Each sub-command is a small function ``cmd_<name>(args)``; errors a user can fix are
:class:`~emodna.errors.EmodnaError` and print as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emodna.cli_options import (
    add_compute_options,
    add_corpora_options,
    add_feature_options,
    add_speaker_options,
    feature_settings_from_args,
    load_corpora_from_args,
)
from emodna.cli_train import cmd_train  # noqa: F401  (run by its sub-parser: cmd_<name>)
from emodna.config import FRONTENDS
from emodna.errors import EmodnaError

EXAMPLES = {
    "corpora": "example:\n  emodna corpora --corpora-dir ../shared/corpora",
    "features": "examples:\n  emodna features --corpora-dir ../shared/corpora\n"
    "  emodna features --corpora-dir DATA/ --corpus EMODB --corpus CASIA --cache /tmp/feats",
    "train": "examples:\n"
    "  emodna train --corpora-dir DATA/ --source EMODB --target CASIA --task arousal --epochs 2\n"
    "  emodna train --corpora-dir DATA/ --config runs/NAME/best/EMODB-CASIA-arousal.yaml\n"
    "  emodna train --corpora-dir DATA/ --source EMODB --target CASIA --method functionals_lr\n"
    "  emodna train --corpora-dir DATA/ --source EMODB --target CASIA --normalize speaker --set bn=adabn",
    "methods": "example:\n  emodna methods",
    "predict": "examples:\n  emodna predict --model runs/NAME/best/EMODB-CASIA-arousal.yaml clip1.wav clip2.wav\n"
    "  emodna predict --model best/EMODB-CASIA-arousal.yaml --model best/EMODB-CASIA-valence.yaml *.wav\n"
    "  emodna predict --model runs/train/EMODB-CASIA-arousal-emodna-s0 my.wav   # an `emodna train` folder",
}


# ---------------------------------------------------------------------------------------
# Shared options


# ---------------------------------------------------------------------------------------
# Sub-commands


def cmd_corpora(args) -> int:
    """One row per corpus. "skipped" counts what training would drop: names the reader
    cannot parse, and files that do not decode. Decoding is known exactly once the features
    are cached (the same count `emodna features`, `emodna train` and the sweep print);
    before that only the headers are read, and the "checked" column says so."""
    import pandas as pd
    import soundfile as sf

    from emodna.corpora import survey_corpora
    from emodna.custom import write_manifest
    from emodna.features import cached_bad_files
    from emodna.labels import load_mapping

    corpora = load_corpora_from_args(args, names=args.corpus or None)
    settings, mapping = feature_settings_from_args(args), load_mapping(args.mapping)
    unreadable = (
        survey_corpora(args.corpora_dir)[1]
        if args.corpora_dir is not None and not args.corpus
        else []
    )
    rows = []
    for name, corpus in corpora.items():
        seconds, bad = 0.0, set()
        for utt in corpus.utterances:
            try:
                seconds += sf.info(str(utt.path)).duration
            except Exception:
                bad.add(str(utt.path))
        decoded = cached_bad_files(corpus, settings, args.cache, mapping)
        if decoded is not None:
            bad |= {path for path, _ in decoded}
        labels = pd.Series([u.emotion for u in corpus.utterances]).value_counts().sort_index()
        rows.append(
            {
                "corpus": name,
                "files": len(corpus.utterances) - len(bad),
                "labels": ", ".join(f"{k} {v}" for k, v in labels.items()),
                "speakers": len({u.speaker for u in corpus.utterances}),
                "hours": round(seconds / 3600, 2),
                "skipped": len(bad) + len(corpus.unparsed),
                "checked": "decoded" if decoded is not None else "headers",
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    for folder, reason in unreadable:
        print(f"not read: {folder}: {reason}")
    if args.write_manifest is not None:
        for corpus in corpora.values():
            print(f"wrote {write_manifest(corpus, args.write_manifest)}")
    if any(r["skipped"] for r in rows):
        print("`emodna features --corpus NAME` lists each skipped file with the reason")
    if any(r["checked"] == "headers" for r in rows):
        print(
            "checked 'headers': only file headers were read; `emodna features` decodes every file"
        )
    return 0


def cmd_features(args) -> int:
    from emodna.features import build_features, usage_line
    from emodna.labels import load_mapping

    corpora = load_corpora_from_args(args, names=args.corpus or None)
    settings = feature_settings_from_args(args)
    mapping = load_mapping(args.mapping)
    for corpus in corpora.values():
        r = build_features(corpus, settings, args.cache, mapping=mapping, workers=args.workers)
        state = "cache hit" if r.cache_hit else "cache miss"
        print(f"{usage_line(corpus, r)}; {r.seconds:.2f} s, {state} -> {r.path}")
        for path, reason in corpus.unparsed:
            print(f"  skipped {path}: {reason}")
        for path, reason in r.bad_files:
            print(f"  skipped {path}: {reason}")
    return 0


def cmd_methods(args) -> int:
    from emodna.config import METHODS

    width = max(map(len, METHODS))
    for name, method in METHODS.items():
        print(f"{name:<{width}}  {method.summary}")
    return 0


def cmd_predict(args) -> int:
    from emodna.predict import run

    return run(
        args.model,
        args.audio,
        args.checkpoint,
        length=args.length,
        normalize_self=args.normalize_self,
        speaker=args.speaker,
        speaker_pattern=args.speaker_pattern,
        speakers=args.speakers,
        as_json=args.json,
    )


# ---------------------------------------------------------------------------------------


COMMANDS_GROUP = "emodna.commands"


def add_plugin_commands(sub) -> None:
    """The commands other installed packages add (``emodna summarize`` comes from ``sweep``):
    entry points of the group ``emodna.commands`` (``pyproject.toml``), each a callable that
    adds its sub-parser to ``sub`` and sets ``func``. So ``emodna`` never imports them by name;
    one that cannot be loaded is left out with a line on stderr."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            entry.load()(sub)
        except Exception as exc:  # a broken add-on must not take emodna train down with it
            print(
                f"emodna: command {entry.name!r} ({entry.value}) not loaded: {exc}", file=sys.stderr
            )


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("emodna-sweep")
    except PackageNotFoundError:
        installed = "unknown (not installed)"
    parser = argparse.ArgumentParser(
        prog="emodna",
        description="Cross-corpus speech emotion recognition with Emo-DNA.",
        epilog="sweeps (many configs x scenarios x seeds, with Ray Tune and Optuna) run with the "
        "emodna-sweep command (the same as python sweep/run.py):\n"
        "  emodna-sweep --corpora-dir DATA/ --space search_spaces/transfer.yaml --budget 24\n"
        '  emodna summarize runs/transfer\nsee README.md, "Sweeps"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"emodna (emodna-sweep) {installed}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text):  # one sub-parser, run by cmd_<name>
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=globals()[f"cmd_{name}"])
        return p

    p = command(
        "corpora", "list the corpora found: files used, labels, speakers, hours, files skipped"
    )
    add_corpora_options(p)
    add_feature_options(p)
    p.add_argument("--corpus", action="append", help="only this corpus (repeatable)")
    p.add_argument(
        "--write-manifest",
        type=Path,
        default=None,
        metavar="DIR",
        help="write DIR/<corpus>.csv, the manifest read or inferred for each corpus, to check and edit",
    )

    p = command(
        "features", "extract (or find cached) features, one Parquet file per corpus and front-end"
    )
    add_corpora_options(p)
    add_feature_options(p)
    p.add_argument("--corpus", action="append", help="only this corpus (repeatable)")

    p = command("methods", "list the training methods: Emo-DNA, its ablations and the baselines")

    p = command(
        "train", "train one scenario (source -> target) and print its final metrics as JSON"
    )
    add_corpora_options(p)
    add_feature_options(
        p,
        FRONTENDS[:3],  # the classical baseline on openSMILE's: --set functionals=egemaps
    )
    p.add_argument(
        "--config",
        type=Path,
        help="YAML config, e.g. one a sweep exported; flags below override it",
    )
    p.add_argument("--source", help="labelled source corpus, e.g. EMODB")
    p.add_argument("--target", help="unlabelled target corpus, e.g. CASIA")
    p.add_argument(
        "--task",
        choices=["arousal", "valence"],
        help="binary task (default: the --config's, else arousal)",
    )
    p.add_argument("--method", help="training method (see `emodna methods`), default emodna")
    p.add_argument("--epochs", type=int, help="training epochs (default: the --config's, else 30)")
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the weights, batches and validation split (default: the --config's, else 0)",
    )
    p.add_argument(
        "--normalize",
        choices=["none", "corpus", "speaker"],
        help="MFCC normalisation: per corpus or per speaker, each by its own mean/std "
        "(default: the --config's, else the TrainConfig default)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any TrainConfig field, e.g. --set bn=adabn --set lr_schedule=cosine (repeatable)",
    )
    add_compute_options(p)
    p.add_argument(
        "--out",
        type=Path,
        help="run folder: TensorBoard events and checkpoint "
        "(default runs/train/SOURCE-TARGET-TASK-METHOD-sSEED); an existing one resumes",
    )

    p = command("predict", "predict arousal/valence of audio files with an exported model")
    p.add_argument(
        "audio",
        nargs="+",
        type=Path,
        help="audio files (any format soundfile reads) or folders of them (e.g. one speaker's)",
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        type=Path,
        help="exported config (best/SCENARIO.yaml), exported ensemble (best/SCENARIO-honest"
        ".yaml), a checkpoint .pt or an `emodna train` folder; twice for arousal and valence",
    )
    p.add_argument(
        "--checkpoint",
        action="append",
        type=Path,
        help="checkpoint of the --model at the same position (default: the .pt beside the .yaml)",
    )
    p.add_argument(
        "--length", type=int, help="fixed length in samples when the export does not record it"
    )
    add_speaker_options(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per file, with every class's probability",
    )
    add_plugin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EmodnaError as exc:
        print(f"emodna {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
