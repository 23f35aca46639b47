"""One searched parameter of a search space: its YAML form, one model per type (``Param``,
told apart by ``type``), and :class:`ParamSpec`, what the sweep suggests to Optuna and
reads back from a trial's params.

Types: ``float`` (``log``, ``step``), ``int`` (``log``, ``step``), ``categorical``
(``choices``) and ``list`` (a fixed-length list of floats, suggested as ``name_0 ..
name_{k-1}`` and returned sorted unless ``sorted: false``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import optuna
from pydantic import AfterValidator, Field, StrictBool, StrictInt, model_validator

from sweep.yamlkeys import Section, listed_once, problem

# A bound: an int or a float, finite. Strict: a bool or a string is not a number here.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Param(Section):
    unknown: ClassVar[str] = "field '{key}' does not apply to type {type}"
    type: str


class Range(Param):
    """Sampled from [low, high], on a log scale if ``log``."""

    low: Number
    high: Number
    log: StrictBool = False

    @model_validator(mode="after")
    def _range(self) -> Range:
        if self.low >= self.high:
            raise problem(
                f"empty range: low={self.low} >= high={self.high}",
                "make low smaller than high (or move the parameter under 'fixed')",
                "low",
            )
        if self.log and self.low <= 0:
            raise problem(
                f"log scale needs low > 0, got low={self.low}",
                "set low to a positive number or drop 'log: true'",
                "low",
            )
        if self.log and getattr(self, "step", None) is not None:
            raise problem("'step' cannot be combined with 'log: true'", "drop one of them", "step")
        return self


class FloatParam(Range):
    type: Literal["float"]
    step: Annotated[Number, Field(gt=0)] | None = None


class IntParam(Range):
    type: Literal["int"]
    low: StrictInt
    high: StrictInt
    step: Annotated[StrictInt, Field(gt=0)] | None = None


class ListParam(Range):
    type: Literal["list"]
    length: Annotated[StrictInt, Field(ge=1)]
    sorted: StrictBool = True


def _plain(choices: tuple) -> tuple:
    # Optuna stores a choice as it is: a structured value belongs under 'fixed'
    for i, choice in enumerate(choices):
        if not (choice is None or isinstance(choice, (str, int, float, bool))):
            raise problem(
                f"choice {choice!r} is not a string, number, boolean or null",
                "use plain values as choices (put structured values under 'fixed')",
                i,
            )
    return listed_once(choices, "choice", repr)  # repr: True and 1 are two choices


class CategoricalParam(Param):
    type: Literal["categorical"]
    choices: Annotated[tuple[Any, ...], Field(min_length=1), AfterValidator(_plain)]


# params: a model per parameter, picked by its `type`
Params = dict[
    str,
    Annotated[FloatParam | IntParam | ListParam | CategoricalParam, Field(discriminator="type")],
]
PARAM_TYPES = ("float", "int", "categorical", "list")
# The fix a message suggests for each field of a parameter
PARAM_FIXES = {
    "type": f"write e.g. type: float (one of {', '.join(PARAM_TYPES)})",
    "low": "write a number, e.g. low: 1",
    "high": "write a number, e.g. high: 10",
    "log": "write log: true or log: false",
    "step": "write a positive number, e.g. step: 2",
    "choices": "write choices: [a, b, ...]",
    "length": "write e.g. length: 5 (a list parameter needs 'length', how many values it holds)",
    "sorted": "write sorted: true or sorted: false",
}


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

    @classmethod
    def of(cls, name: str, param: Param) -> ParamSpec:
        return cls(name=name, **param.model_dump())

    def optuna_names(self) -> list[str]:
        """The names Optuna sees (a ``list`` parameter becomes ``name_0 .. name_{k-1}``)."""
        if self.type == "list":
            return [f"{self.name}_{i}" for i in range(self.length or 0)]
        return [self.name]

    def refuses(self, value: Any) -> tuple[str, str] | None:
        """(problem, fix) if ``value`` cannot be enqueued for this parameter, else None."""
        if self.type == "list":
            return "a list parameter cannot be enqueued", "leave it out"
        if self.type == "categorical":
            if value not in self.choices:
                return f"{value!r} is not among the choices", f"use one of {list(self.choices)}"
        elif not is_number(value) or not self.low <= value <= self.high:
            return f"{value!r} is outside [{self.low}, {self.high}]", "use a value in the range"
        return None

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
