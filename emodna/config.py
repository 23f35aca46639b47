"""What a training run is: :class:`TrainConfig` and the registry of methods it may name.

Torch-free on purpose: the sweep, the CLI and the exports read and validate configs before
(or without) importing torch, so a typo in a search space fails in a second, not after
start-up. ``emodna.methods`` builds the loss modules for a :class:`Method`; ``emodna.train``
runs one config.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from emodna.errors import ConfigError
from emodna.labels import TASKS
from emodna.normalize import MODES as NORMALIZE_MODES

# Input features (emodna.features): the paper's MFCCs, a log-Mel filterbank, openSMILE's
# eGeMAPSv02 low-level descriptors per frame, or its functionals per clip (the last for the
# classical baseline only, through TrainConfig.functionals)
FRONTENDS = ("mfcc", "logmel", "egemaps_lld", "egemaps")

# How BatchNorm sees the two corpora (emodna.model.DomainBatchNorm1d, docs/design.md, decision 7)
BN_MODES = ("separate", "joint", "adabn", "dsbn")


@dataclass(frozen=True)
class Method:
    summary: str
    corpus: bool = False  # corpus encoder trained by L_corpus (3)
    decouple: bool = False  # prototype contrastive decoupling (4)-(5)
    mmd: bool = False  # MK-MMD between source and target emotion features (10)
    supcon: bool = False  # SupCon over source + pseudo-labelled target (9)
    threshold: str = (
        "adaptive"  # for supcon: "adaptive" (6)-(7), "fixed" (0.9) or "none" (all target)
    )
    adversary: str | None = None  # baselines: "dann", "jan", "cdan", "bsp" (BSP + DANN)
    mmd_trade_off: bool = False  # baseline DAN: its MK-MMD is weighted by cfg.trade_off
    classical: bool = (
        False  # no network: scikit-learn on MFCC functionals (emodna.train.fit_classical)
    )


METHODS: dict[str, Method] = {
    "emodna": Method(
        "Emo-DNA: decoupling, MK-MMD and SupCon with the adaptive threshold (the full method)",
        corpus=True,
        decouple=True,
        mmd=True,
        supcon=True,
    ),
    # Table 4 ablations
    "v2_corpus_encoder_only": Method(
        "Table 4 V2: emotion and corpus encoders with their classifiers, no decoupling, no alignment",
        corpus=True,
    ),
    "v3_no_decouple": Method(
        "Table 4 V3: Emo-DNA without L_decouple", corpus=True, mmd=True, supcon=True
    ),
    "v4_no_align": Method("Table 4 V4: Emo-DNA without L_align", corpus=True, decouple=True),
    "v5_no_decoupling": Method(
        "Table 4 V5: alignment only (MK-MMD + SupCon), no corpus encoder and no decoupling",
        mmd=True,
        supcon=True,
    ),
    # Table 6 ablations of the sample-level alignment
    "no_scl": Method("Table 6: Emo-DNA without SupCon", corpus=True, decouple=True, mmd=True),
    "no_threshold": Method(
        "Table 6: SupCon over every target sample (no confidence threshold)",
        corpus=True,
        decouple=True,
        mmd=True,
        supcon=True,
        threshold="none",
    ),
    "fixed_threshold": Method(
        "Table 6: SupCon with a fixed confidence threshold (fixed_threshold, 0.9)",
        corpus=True,
        decouple=True,
        mmd=True,
        supcon=True,
        threshold="fixed",
    ),
    # Baselines
    "functionals_lr": Method(
        "baseline, classical: per-corpus standardised MFCC mean+std into logistic regression, "
        "source only (seconds)",
        classical=True,
    ),
    "source_only": Method("baseline: emotion cross-entropy on the source only"),
    "dan": Method(
        "baseline DAN (Long 2015): MK-MMD on the emotion features", mmd=True, mmd_trade_off=True
    ),
    "dann": Method(
        "baseline DANN (Ganin 2016): domain adversary through gradient reversal", adversary="dann"
    ),
    "jan": Method(
        "baseline JAN (Long 2017): joint MMD of features and predictions", adversary="jan"
    ),
    "cdan": Method(
        "baseline CDAN (Long 2018): adversary on the features x predictions map", adversary="cdan"
    ),
    "bsp": Method(
        "baseline BSP (Chen 2019): DANN plus batch spectral penalization", adversary="bsp"
    ),
}

# The str fields a config may set, and their allowed values (validate() checks them).
CHOICES = {
    "task": TASKS,
    "decouple_negative": ("same", "other"),
    "decouple_level": ("prototype", "sample"),
    "normalize": NORMALIZE_MODES,
    "bn": BN_MODES,
    "class_balance": ("none", "loss", "sampler"),
    "lr_schedule": ("constant", "cosine"),
    "select": ("last", "source_val"),
    "frontend": FRONTENDS[:3],  # the frame-level ones: what the deep methods can take
    "functionals": ("stats", "egemaps"),
    "amp": ("off", "bf16"),
}
# Keys of older exports, mapped to today's: (new key, {old value: new value}).
RENAMED = {"normalize_features": ("normalize", {True: "corpus", False: "none"})}


@dataclass
class TrainConfig:
    """Everything that determines one training run. A sweep exports exactly this as YAML."""

    source: str = "EMODB"
    target: str = "CASIA"
    task: str = "arousal"
    method: str = "emodna"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    # Emo-DNA's hyperparameters (docs/design.md; the paper's values as defaults)
    tau_p: float = 0.01  # prototype contrastive temperature, Eq. (4)-(5)
    tau_s: float = 0.01  # supervised contrastive temperature, Eq. (9)
    ema_lambda: float = 0.99  # threshold EMA momentum, Eq. (7); not given in the paper
    alpha_1: float = 0.1  # weight of SupCon in L_align, Eq. (11)
    mmd_multipliers: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0])
    decouple_negative: str = "same"  # "same" or "other" corpus prototype as the negative
    decouple_level: str = "prototype"  # Eq. (5)'s anchors: "prototype" (as written) or "sample"
    fixed_threshold: float = 0.9  # for the fixed_threshold ablation
    trade_off: float = 1.0  # weight of a baseline's alignment loss (DAN, DANN, JAN, CDAN, BSP)
    # what decides cross-corpus results besides the method (docs/design.md, decision 7)
    # defaults: docs/results.md; the paper's inputs are normalize "none", bn "separate"
    normalize: str = (
        "speaker"  # MFCC normalisation: "none", "corpus" or "speaker" (emodna.normalize)
    )
    bn: str = "adabn"  # how BatchNorm sees the corpora: separate, joint, adabn, dsbn (emodna.model)
    class_balance: str = "none"  # "none", "loss" (inverse-frequency CE weights) or "sampler"
    lr_schedule: str = "constant"  # "constant" or "cosine" (to 0 over all steps)
    select: str = "last"  # model kept: "last" epoch or best "source_val" accuracy (label-free)
    # input features: the front-end (emodna.features), and what the classical baseline fits
    # on: "stats" (mean and std over the front-end's frames) or "egemaps" (openSMILE's 88
    # eGeMAPSv02 functionals per clip); deep methods ignore `functionals`
    frontend: str = "mfcc"
    functionals: str = "stats"
    # data
    val_fraction: float = 0.1
    dropout: float = 0.1
    # where it runs: "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu", "cuda",
    # "cuda:N". Recorded, never part of what a config means (docs/design.md, decision 10)
    device: str = "auto"
    # mixed precision of the deep methods' forward pass: "off" (float32) or "bf16"
    # (torch.autocast; the contrastive logits stay float32, emodna.losses). Recorded like device
    amp: str = "off"

    @classmethod
    def from_dict(cls, values: dict, origin: str = "config") -> TrainConfig:
        """Build from a dict; unknown keys and wrong types raise ConfigError naming them.

        The key ``origin`` (where an exported config came from) is kept aside and ignored.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        values = dict(values)
        for old, (new, translate) in RENAMED.items():
            if old not in values:
                continue
            value = values.pop(old)
            if not isinstance(value, bool) or value not in translate:
                raise ConfigError(
                    f"{origin}: {old} must be a bool, got {value!r} (today's key: {new}: "
                    f"{' | '.join(CHOICES[new])})"
                )
            values[new] = translate[value]
        for key, value in values.items():
            if key == "origin":
                continue
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?"
                    if close
                    else f"; known keys: {', '.join(fields)}"
                )
                raise ConfigError(f"{origin}: unknown key {key!r}{hint}")
            kwargs[key] = _coerce(key, value, fields[key], origin)
        config = cls(**kwargs)
        config.validate(origin)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> TrainConfig:
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the config ({exc})") from exc
        if not isinstance(values, dict):
            raise ConfigError(
                f"{path}: a config is a mapping of keys to values, got {type(values).__name__}"
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, origin=str(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def feature_set(self) -> str:
        """The features this run reads (a FeatureSettings.frontend): the front-end, or
        ``egemaps`` for the classical baseline on openSMILE's functionals."""
        method = METHODS.get(self.method)  # None for a name validate() would refuse
        if method is not None and method.classical and self.functionals == "egemaps":
            return "egemaps"
        return self.frontend

    def validate(self, origin: str = "config") -> None:
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{origin}: {name} {getattr(self, name)!r} is not one of {', '.join(allowed)}"
                )
        if self.method not in METHODS:
            raise ConfigError(
                f"{origin}: unknown method {self.method!r}; `emodna methods` lists: {', '.join(METHODS)}"
            )
        if self.select == "source_val" and self.val_fraction <= 0:
            raise ConfigError(f"{origin}: select: source_val needs val_fraction > 0")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{origin}: {name} must be at least 1")
        for name in ("lr", "tau_p", "tau_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{origin}: {name} must be positive")
        if not 0 <= self.ema_lambda < 1:
            raise ConfigError(f"{origin}: ema_lambda must be in [0, 1)")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"{origin}: val_fraction must be in [0, 1)")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"{origin}: device {self.device!r} is not auto, cpu, cuda or cuda:N")
        if not self.mmd_multipliers or min(self.mmd_multipliers) <= 0:
            raise ConfigError(
                f"{origin}: mmd_multipliers must be a non-empty list of positive numbers"
            )


def _coerce(key: str, value, f: dataclasses.Field, origin: str):
    """Check one value against the field's type; ints are accepted where floats are."""
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind == "int":
            if isinstance(value, bool) or not float(value).is_integer():
                raise TypeError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
        if kind.startswith("list"):
            if not isinstance(value, list | tuple):
                raise TypeError
            return [float(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {key} must be a {kind}, got {value!r}") from None
    return value


# Every key a TrainConfig has: what a sweep's config passes to training (the rest is the
# sweep's own bookkeeping).
TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
