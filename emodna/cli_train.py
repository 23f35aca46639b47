"""``emodna train``: one config, or every member of an exported ensemble
(:mod:`emodna.ensemble`), trained on a source and a target corpus."""

from __future__ import annotations

import sys
from pathlib import Path

from emodna.cli_options import feature_settings_from_args, load_corpora_from_args, parse_sets
from emodna.errors import ConfigError, CorpusError


def cmd_train(args) -> int:
    import json

    import torch

    from emodna.config import TrainConfig
    from emodna.ensemble import is_ensemble, read_members, train_members

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)

    overrides = {
        k: getattr(args, k)
        for k in (
            "source",
            "target",
            "task",
            "method",
            "epochs",
            "seed",
            "normalize",
            "frontend",
            "device",
            "amp",
        )  # fmt: skip
    }
    overrides.update(parse_sets(args.set))
    if args.config is not None and is_ensemble(args.config):  # train each member, average
        members = read_members(args.config, **overrides)
        out = args.out or Path("runs") / "train" / Path(args.config).stem
        result = train_members(members, lambda c, o, p: _train_one(args, c, o, p)[0], out)
        print(json.dumps(result))
        return 0
    if args.config is not None:
        cfg = TrainConfig.from_yaml(args.config, **overrides)
    else:
        cfg = TrainConfig.from_dict(
            {k: v for k, v in overrides.items() if v is not None}, "command line"
        )
    final, out, device, cfg = _train_one(args, cfg, args.out)
    # the thread count changes the order of float sums, hence the last digits of the scores
    print(
        json.dumps(
            {
                "source": cfg.source,
                "target": cfg.target,
                "task": cfg.task,
                "method": cfg.method,
                "seed": cfg.seed,
                "threads": torch.get_num_threads(),
                "device": str(device),
                "amp": cfg.amp,
                "out": str(out),
                **final,
            }
        )
    )
    return 0


def _train_one(args, cfg, out, predictions_path=None):
    """Train one config as ``emodna train`` does; (final metrics, out folder, device, the
    config with the corpora's names as found on disk)."""
    import dataclasses

    from emodna.custom import corpus_warnings, task_problem
    from emodna.features import corpus_features
    from emodna.labels import load_mapping
    from emodna.runlog import RunLog
    from emodna.train import Domain, fit, resolve_device

    if cfg.source == cfg.target:
        raise CorpusError(f"source and target are both {cfg.source}: pick two different corpora")
    device = resolve_device(cfg.device)  # a GPU that is not there fails now, before extraction
    mapping = load_mapping(args.mapping)
    corpora = load_corpora_from_args(args, names=[cfg.source, cfg.target])
    canonical = {name.lower(): name for name in corpora}  # corpus names are case-insensitive
    cfg = dataclasses.replace(
        cfg,
        source=canonical.get(cfg.source.lower(), cfg.source),
        target=canonical.get(cfg.target.lower(), cfg.target),
    )
    for corpus in corpora.values():
        problem = task_problem(corpus, cfg.task, mapping)
        if problem is not None:
            raise CorpusError(
                f"{problem}; pick another task or corpus, or map its emotions with --mapping"
            )
        for line in corpus_warnings(corpus):
            print(f"warning: {line}", file=sys.stderr)
    settings = feature_settings_from_args(args, cfg)
    feats = corpus_features(
        corpora,
        settings,
        args.cache,
        mapping=mapping,
        workers=args.workers,
        report=lambda line: print(line, file=sys.stderr),
    )
    source, target = (
        Domain.of(feats[name], cfg.task, mapping) for name in (cfg.source, cfg.target)
    )
    out = (
        out
        or Path("runs") / "train" / f"{cfg.source}-{cfg.target}-{cfg.task}-{cfg.method}-s{cfg.seed}"
    )
    log = RunLog(out, cfg.to_dict())

    def on_epoch(metrics):
        log(metrics)
        keys = (
            "loss",
            "target_war",
            "target_uar",
            "target_f1_pos",
            "target_f1_macro",
            "source_val_acc",
        )
        shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)
        print(f"epoch {metrics['epoch']}/{cfg.epochs}: {shown}", file=sys.stderr)

    final = fit(
        cfg,
        source,
        target,
        on_epoch=on_epoch,
        checkpoint_dir=out,
        predictions_path=predictions_path,
    )
    log.close(final)
    return final, out, device, cfg
