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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin, get_type_hints

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

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
        False  # no network: scikit-learn on MFCC functionals (emodna.classical.fit_classical)
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


def _number(kind: type):
    """``kind`` as YAML and --set write it: 30, 30.0 and "1e-3" (YAML reads that as a string)
    all count, a word does not, and neither does a bool (pydantic would take True as 1)."""

    def not_bool(value):
        if isinstance(value, bool):
            raise PydanticCustomError(f"{kind.__name__}_type", "a bool is not a number")
        return value

    return Annotated[kind, BeforeValidator(not_bool)]


def _bound(words: str, holds: Callable[[float], bool]) -> AfterValidator:
    """A bound on a number, in the words a message says it (``lr must be positive``)."""

    def check(value):
        if not holds(value):
            raise PydanticCustomError("bound", words)
        return value

    return AfterValidator(check)


Int, Float = _number(int), _number(float)
Count = Annotated[Int, _bound("must be at least 1", lambda v: v >= 1)]
Positive = Annotated[Float, _bound("must be positive", lambda v: v > 0)]
Fraction = Annotated[Float, _bound("must be in [0, 1)", lambda v: 0 <= v < 1)]


@dataclass
class TrainConfig:
    """Everything that determines one training run. A sweep exports exactly this as YAML.

    The types say what a value may be; :meth:`from_dict` checks them (pydantic). Building one
    in code does not check: ``sweep.report`` builds configs of old runs whose method may since
    have been renamed.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    source: str = "EMODB"
    target: str = "CASIA"
    task: Literal[TASKS] = "arousal"
    method: str = "emodna"  # a name in METHODS
    epochs: Count = 30
    batch_size: Count = 64
    lr: Positive = 1e-3
    seed: Int = 0
    # Emo-DNA's hyperparameters (docs/design.md; the paper's values as defaults)
    tau_p: Positive = 0.01  # prototype contrastive temperature, Eq. (4)-(5)
    tau_s: Positive = 0.01  # supervised contrastive temperature, Eq. (9)
    ema_lambda: Fraction = 0.99  # threshold EMA momentum, Eq. (7); not given in the paper
    alpha_1: Float = 0.1  # weight of SupCon in L_align, Eq. (11)
    mmd_multipliers: Annotated[list[Positive], Field(min_length=1)] = field(
        default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0]
    )
    decouple_negative: Literal["same", "other"] = "same"  # corpus prototype as the negative
    decouple_level: Literal["prototype", "sample"] = "prototype"  # Eq. (5)'s anchors
    fixed_threshold: Float = 0.9  # for the fixed_threshold ablation
    trade_off: Float = 1.0  # weight of a baseline's alignment loss (DAN, DANN, JAN, CDAN, BSP)
    # what decides cross-corpus results besides the method (docs/design.md, decision 7)
    # defaults: docs/results.md; the paper's inputs are normalize "none", bn "separate"
    normalize: Literal[NORMALIZE_MODES] = "speaker"  # MFCC normalisation (emodna.normalize)
    bn: Literal[BN_MODES] = "adabn"  # how BatchNorm sees the corpora (emodna.model)
    # "loss" (inverse-frequency CE weights) or "sampler" (class-balanced batches)
    class_balance: Literal["none", "loss", "sampler"] = "none"
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: to 0 over all steps
    # model kept: the "last" epoch or the best "source_val" accuracy (label-free)
    select: Literal["last", "source_val"] = "last"
    # the weights evaluated and kept: the last step's ("none"), an exponential moving average
    # over steps ("ema", decay weight_ema_decay), or the equal average of the weights at each
    # epoch's end from the second half of training on ("swa"); torch.optim.swa_utils
    weight_average: Literal["none", "ema", "swa"] = "none"
    weight_ema_decay: Fraction = 0.99
    # input features: the front-end (emodna.features; the frame-level ones, what the deep
    # methods take), and what the classical baseline fits on: "stats" (mean and std over
    # the front-end's frames) or "egemaps" (openSMILE's 88 eGeMAPSv02 functionals per clip);
    # deep methods ignore `functionals`
    frontend: Literal[FRONTENDS[:3]] = "mfcc"
    functionals: Literal["stats", "egemaps"] = "stats"
    # data
    val_fraction: Fraction = 0.1
    dropout: Float = 0.1
    # where it runs: "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu", "cuda",
    # "cuda:N". Recorded, never part of what a config means (docs/design.md, decision 10)
    device: str = "auto"
    # mixed precision of the deep methods' forward pass: "auto" (bf16 on a CPU that runs it
    # natively, float32 elsewhere; emodna.speed), "off" (float32) or "bf16" (torch.autocast;
    # the contrastive logits stay float32, emodna.losses). Recorded like device
    amp: Literal["auto", "off", "bf16"] = "auto"
    # torch.compile of the model's forward: "off", or "on" (eager with a warning where no
    # compiler works; emodna.speed). Recorded like device
    compile: Literal["off", "on"] = "off"

    @model_validator(mode="after")
    def _rules(self) -> TrainConfig:
        # what a type cannot say; each text is the whole message after "<origin>: "
        if self.method not in METHODS:
            raise ValueError(
                f"unknown method {self.method!r}; `emodna methods` lists: {', '.join(METHODS)}"
            )
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device {self.device!r} is not auto, cpu, cuda or cuda:N")
        if self.select == "source_val" and self.val_fraction <= 0:
            raise ValueError("select: source_val needs val_fraction > 0")
        return self

    @classmethod
    def from_dict(cls, values: dict, origin: str = "config") -> TrainConfig:
        """Build from a dict; an unknown key, a wrong type or value raises ConfigError naming it.

        The key ``origin`` (where an exported config came from) is kept aside and ignored.
        """
        values = {k: v for k, v in values.items() if k != "origin"}
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
        try:
            return _CHECKED.validate_python(values)
        except ValidationError as exc:
            raise ConfigError(f"{origin}: {_problem(exc.errors()[0])}") from None

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

    def validate(self, origin: str = "config") -> None:
        """Check a config built in code, as :meth:`from_dict` checks one read from a file."""
        TrainConfig.from_dict(self.to_dict(), origin)

    @property
    def feature_set(self) -> str:
        """The features this run reads (a FeatureSettings.frontend): the front-end, or
        ``egemaps`` for the classical baseline on openSMILE's functionals."""
        method = METHODS.get(self.method)  # None for a name from_dict would refuse
        if method is not None and method.classical and self.functionals == "egemaps":
            return "egemaps"
        return self.frontend


_CHECKED = TypeAdapter(TrainConfig)  # validates a dict into a TrainConfig

# Every key a TrainConfig has: what a sweep's config passes to training (the rest is the
# sweep's own bookkeeping).
TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
# The str fields with a fixed set of values, and those values (from their Literal types).
CHOICES = {
    name: get_args(hint)
    for name, hint in get_type_hints(TrainConfig).items()
    if get_origin(hint) is Literal
}
# Keys of older exports, mapped to today's: (new key, {old value: new value}).
RENAMED = {"normalize_features": ("normalize", {True: "corpus", False: "none"})}


def _problem(error: dict) -> str:
    """One pydantic error as today's words: ``lr must be a float, got 'fast'``."""
    key = ".".join(str(part) for part in error["loc"])
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind in ("unexpected_keyword_argument", "invalid_key"):
        known = [f.name for f in dataclasses.fields(TrainConfig)]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return f"unknown key {key!r}; {hint}"
    if kind == "value_error":  # a validator above: its text is the whole problem
        return str(ctx["error"])
    if kind == "too_short":
        return f"{key} must not be empty"
    if kind == "literal_error":
        return f"{key} {value!r} is not one of {', '.join(CHOICES[key])}"
    if kind == "bound":  # _bound above: its words say the rule
        return f"{key} {error['msg']}"
    # a wrong type: int_parsing, float_type, string_type, list_type ...
    return f"{key} must be a {kind.split('_')[0]}, got {value!r}"
