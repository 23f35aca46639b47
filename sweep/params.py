"""One searched parameter of a search space (:class:`ParamSpec`): its YAML form, checked by
:func:`parse_param`, and how it is suggested to Optuna and read back from a trial's params.

Types: ``float`` (``log``, ``step``), ``int`` (``log``, ``step``), ``categorical``
(``choices``) and ``list`` (a fixed-length list of floats, suggested as ``name_0 ..
name_{k-1}`` and returned sorted unless ``sorted: false``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna

from sweep.yamlkeys import Where, did_you_mean, unknown_key_error

PARAM_TYPES = ("float", "int", "categorical", "list")


PARAM_FIELDS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
    "list": ("type", "length", "low", "high", "log", "sorted"),
}


ALL_PARAM_FIELDS = tuple(sorted({f for fields in PARAM_FIELDS.values() for f in fields}))


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    length: int | None = None
    sorted: bool = True

    def optuna_names(self) -> list[str]:
        """The names Optuna sees (a ``list`` parameter becomes ``name_0 .. name_{k-1}``)."""
        if self.type == "list":
            return [f"{self.name}_{i}" for i in range(self.length or 0)]
        return [self.name]

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        values = [
            trial.suggest_float(n, self.low, self.high, log=self.log) for n in self.optuna_names()
        ]
        return sorted(values) if self.sorted else values

    def from_params(self, params: dict) -> Any:
        """The value this parameter takes given Optuna's ``trial.params``."""
        if self.type == "list":
            values = [params[n] for n in self.optuna_names()]
            return sorted(values) if self.sorted else values
        return params[self.name]


def parse_param(name: str, spec: Any, where: Where) -> ParamSpec:
    key = ("params", name)
    if not isinstance(spec, dict):
        raise where.error(
            key,
            f"expected a mapping like {{type: float, low: ..., high: ...}}, got {spec!r}",
            "write the parameter as a mapping with a 'type' field",
        )
    for f in spec:
        if f not in ALL_PARAM_FIELDS:
            raise unknown_key_error(where, key + (f,), ALL_PARAM_FIELDS, "param fields")
    if "type" not in spec:
        raise where.error(
            key, "missing field 'type'", f"add 'type:' with one of {', '.join(PARAM_TYPES)}"
        )
    ptype = spec["type"]
    if ptype not in PARAM_TYPES:
        hint = did_you_mean(ptype, PARAM_TYPES)
        raise where.error(
            key + ("type",),
            f"unknown type {ptype!r}",
            (f"{hint} " if hint else "") + f"valid types: {', '.join(PARAM_TYPES)}",
        )
    for f in spec:
        if f not in PARAM_FIELDS[ptype]:
            raise where.error(
                key + (f,),
                f"field '{f}' does not apply to type {ptype}",
                f"remove it (type {ptype} takes {', '.join(PARAM_FIELDS[ptype])})",
            )

    if ptype == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise where.error(
                key + ("choices",) if "choices" in spec else key,
                "a categorical parameter needs a non-empty list 'choices'",
                "write choices: [a, b, ...]",
            )
        for i, c in enumerate(choices):
            if not (c is None or isinstance(c, (str, int, float, bool))):
                raise where.error(
                    key + ("choices", i),
                    f"choice {c!r} is not a string, number, boolean or null",
                    "use plain values as choices (put structured values under 'fixed')",
                )
        if len(set(map(repr, choices))) != len(choices):
            raise where.error(key + ("choices",), "choices repeat a value", "list each choice once")
        return ParamSpec(name=name, type=ptype, choices=tuple(choices))

    for f in ("low", "high"):
        if f not in spec:
            raise where.error(key, f"missing field '{f}'", f"add '{f}:' with a number")
        if not is_number(spec[f]):
            raise where.error(
                key + (f,), f"'{f}' must be a finite number, got {spec[f]!r}", "write a number"
            )
    low, high = spec["low"], spec["high"]
    if ptype == "int":
        for f in ("low", "high"):
            if not isinstance(spec[f], int):
                raise where.error(
                    key + (f,),
                    f"'{f}' of an int parameter must be an integer, got {spec[f]!r}",
                    "write an integer",
                )
    if low >= high:
        raise where.error(
            key + ("low",),
            f"empty range: low={low} >= high={high}",
            "make low smaller than high (or move the parameter under 'fixed')",
        )
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise where.error(
            key + ("log",),
            f"'log' must be true or false, got {log!r}",
            "write log: true or log: false",
        )
    if log and low <= 0:
        raise where.error(
            key + ("low",),
            f"log scale needs low > 0, got low={low}",
            "set low to a positive number or drop 'log: true'",
        )
    step = spec.get("step")
    if step is not None:
        if not is_number(step) or step <= 0:
            raise where.error(
                key + ("step",),
                f"'step' must be a positive number, got {step!r}",
                "write a positive step",
            )
        if ptype == "int" and not isinstance(step, int):
            raise where.error(
                key + ("step",),
                f"'step' of an int parameter must be an integer, got {step!r}",
                "write an integer step",
            )
        if log:
            raise where.error(
                key + ("step",), "'step' cannot be combined with 'log: true'", "drop one of them"
            )
    if ptype == "list":
        length = spec.get("length")
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise where.error(
                key + ("length",) if "length" in spec else key,
                f"a list parameter needs 'length', a positive integer (got {length!r})",
                "add e.g. length: 5",
            )
        srt = spec.get("sorted", True)
        if not isinstance(srt, bool):
            raise where.error(
                key + ("sorted",),
                f"'sorted' must be true or false, got {srt!r}",
                "write sorted: true or sorted: false",
            )
        return ParamSpec(
            name=name,
            type=ptype,
            low=float(low),
            high=float(high),
            log=log,
            length=length,
            sorted=srt,
        )
    if ptype == "float":
        return ParamSpec(
            name=name,
            type=ptype,
            low=float(low),
            high=float(high),
            log=log,
            step=float(step) if step is not None else None,
        )
    return ParamSpec(name=name, type=ptype, low=int(low), high=int(high), log=log, step=step)
