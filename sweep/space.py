"""Search spaces: the YAML files under ``search_spaces/`` and what Optuna samples from them.

A space file declares the method, the metric that is aggregated over scenarios and seeds,
the scenarios themselves, fixed values and the searched parameters::

    method: emodna
    metric: target_uar
    mode: max
    epochs: 30
    seeds: [0, 1, 2]
    scenarios:
      corpora: all            # or [EMODB, CASIA, ...]; ordered pairs source != target
      tasks: [arousal, valence]
      # or: list: [{source: EMODB, target: CASIA, task: arousal}, ...]
    fixed:
      batch_size: 64
    params:
      tau_p: {type: float, low: 0.001, high: 1.0, log: true}
      mmd_multipliers: {type: list, length: 5, low: 0.125, high: 8.0, log: true}

Parameter types: ``float``, ``int``, ``categorical`` and ``list`` (``sweep.params``).

Every mistake raises :class:`emodna.errors.ConfigError` with one line that names the file,
the line, the key and the fix (``sweep.yamlkeys``). The file's form is pydantic models: the
top level here (:class:`SpaceFile`), a parameter in ``sweep.params``, the ``scenarios`` block
in ``sweep.scenarios``; :func:`parse_space` adds the rules that span sections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import optuna
from pydantic import AfterValidator, BeforeValidator, Field, StrictFloat, StrictInt, ValidationError

from emodna.errors import ConfigError
from sweep.params import PARAM_FIXES, Params, ParamSpec
from sweep.scenarios import SCENARIO_FIXES, Scenarios, as_list, expand_scenarios
from sweep.yamlkeys import Section, Where, did_you_mean, file_error, listed_once, read_yaml

SAMPLERS = ("tpe", "gp", "cmaes", "random", "nsga2", "grid")  # sweep.samplers builds them
# Keys that the searcher puts into every trial config: a space may not define them.
RESERVED_KEYS = ("source", "target", "task", "seed", "config_id", "epochs")
SEARCHED_METHOD = "searched"
Name = Annotated[str, Field(min_length=1)]


class SpaceFile(Section):
    """A space file as written; the defaults are those of a key left out."""

    unknown: ClassVar[str] = "unknown top-level key '{key}'"
    method: Name | None = None  # or searched, under params
    metric: Name = "target_uar"
    mode: Literal["max", "min"] = "max"
    epochs: Annotated[StrictInt, Field(ge=1)] = 30
    seeds: Annotated[
        list[StrictInt],
        BeforeValidator(as_list),
        Field(min_length=1),
        AfterValidator(lambda s: listed_once(s, "seed")),
    ] = [0, 1, 2]
    scenarios: Scenarios | None = None
    fixed: dict[str, Any] | None = None
    params: Params | None = None
    sampler: Literal[SAMPLERS] | None = None
    gpus_per_trial: Annotated[StrictFloat, Field(ge=0)] = 0.0  # --gpus-per-trial overrides it
    # configs Optuna tries first, in order: values of searched parameters
    enqueue: list[Annotated[dict[str, Any], Field(min_length=1)]] | None = None
    # complete configs run on every unit before the searched ones and never sampled: the
    # defaults and the classical baselines, so every selection and ensemble can fall back
    # on them. Each maps TrainConfig fields (over `fixed`) and may carry a `name`
    candidates: list[Annotated[dict[str, Any], Field(min_length=1)]] | None = None
    description: str | None = None


# The fix a message suggests for each key ("": the file as a whole)
FIXES = {
    "": "start the file with 'method:', 'params:' ...",
    "method": "write e.g. method: emodna",
    "metric": "write e.g. metric: target_uar",
    "mode": "write mode: max or mode: min",
    "epochs": "write e.g. epochs: 30",
    "seeds": "write e.g. seeds: [0, 1, 2]",
    "fixed": "write fixed: {name: value}",
    "params": "write params: {name: {type: float, low: ..., high: ...}}",
    "sampler": f"write one of {', '.join(SAMPLERS)}",
    "gpus_per_trial": "write e.g. gpus_per_trial: 0.25 (four trials share a GPU) or 0 (CPU)",
    "enqueue": "write enqueue: [{method: functionals_lr}, {normalize: speaker, bn: adabn}]",
    "candidates": "write candidates: [{name: defaults}, {name: egemaps_lr, method: functionals_lr, functionals: egemaps}]",
    "description": "write description: some words",
    **PARAM_FIXES,
    **SCENARIO_FIXES,
}


# ----------------------------------------------------------------------------- space


@dataclass
class SearchSpace:
    """A parsed search-space file."""

    path: Path | None
    method: str
    metric: str
    mode: str
    epochs: int
    seeds: list[int]
    fixed: dict
    params: dict[str, ParamSpec]
    scenario_spec: Scenarios
    sampler: str | None = None
    gpus_per_trial: float = 0.0  # GPUs per deep trial (fractions share one); 0: CPU trials
    description: str = ""
    enqueue: list[dict] = field(default_factory=list)  # configs Optuna tries first, in order
    candidates: list[dict] = field(default_factory=list)  # fixed configs run first, by name
    _where: Where | None = field(default=None, repr=False, compare=False)

    @property
    def methods(self) -> list[str]:
        """Every method this space can produce: the fixed one, or the searched choices."""
        searched = (
            [str(c) for c in self.params["method"].choices]
            if "method" in self.params
            else [self.method]
        )
        extra = [c.get("method", self.method) for c in self.candidates]
        return list(dict.fromkeys([*searched, *extra]))

    def grid(self) -> dict[str, list] | None:
        """The full grid when every parameter is categorical (or an int with few values)."""
        grid: dict[str, list] = {}
        for p in self.params.values():
            if p.type == "categorical":
                grid[p.name] = list(p.choices)
            elif p.type == "int" and not p.log:
                grid[p.name] = list(range(int(p.low), int(p.high) + 1, int(p.step or 1)))
            else:
                return None
        return grid

    def _complete(self, values: dict) -> dict:
        config = dict(self.fixed)
        config.update(values)
        config.setdefault("method", self.method)
        config["epochs"] = self.epochs
        return config

    def feature_sets(self) -> list[str]:
        """The features this space's configs read (``TrainConfig.feature_set`` of every
        method x front-end x functionals it can produce), in ``FRONTENDS`` order: a sweep
        extracts each and puts it into the object store once."""
        from emodna.config import FRONTENDS, TrainConfig

        def options(key: str) -> list:
            if key in self.params:
                return list(self.params[key].choices or [getattr(TrainConfig, key)])
            return [self.fixed.get(key, getattr(TrainConfig, key))]

        sets = {
            TrainConfig(method=m, frontend=f, functionals=fn).feature_set
            for m in self.methods
            for f in options("frontend")
            for fn in options("functionals")
        }
        sets |= {
            TrainConfig.from_dict(
                {k: v for k, v in self.candidate(i).items() if k != "epochs"}
            ).feature_set
            for i in range(len(self.candidates))
        }
        return sorted(sets, key=lambda s: FRONTENDS.index(s) if s in FRONTENDS else len(FRONTENDS))

    def candidate(self, i: int) -> dict:
        """Candidate ``i`` as a trial config: the fixed values, its own, method and epochs
        (its ``name`` is not a training field: :meth:`candidate_names`)."""
        values = {k: v for k, v in self.candidates[i].items() if k != "name"}
        return self._complete(values)

    def candidate_names(self) -> list[str]:
        """Each candidate's ``name``, or ``candidate<i>`` where it has none."""
        return [str(c.get("name") or f"candidate{i}") for i, c in enumerate(self.candidates)]

    def candidate_items(self) -> list[tuple[str, dict]]:
        """(name, trial config) of every candidate, in order."""
        return [(n, self.candidate(i)) for i, n in enumerate(self.candidate_names())]

    def suggest(self, trial: optuna.Trial) -> dict:
        """Hyperparameters for one config: fixed values, sampled params, method, epochs."""
        return self._complete({name: p.suggest(trial) for name, p in self.params.items()})

    def config_from_params(self, params: dict) -> dict:
        """Rebuild :meth:`suggest`'s output from an Optuna trial's ``params``."""
        return self._complete({name: p.from_params(params) for name, p in self.params.items()})

    def scenarios(self, available: Sequence[str]) -> list[dict]:
        """The ``scenarios`` block expanded against the corpora present (:func:`expand_scenarios`)."""
        return expand_scenarios(
            self.scenario_spec, available, self._where or Where(self.path, None)
        )


def parse_space(
    text: str,
    path: str | Path | None = None,
    known_methods: Sequence[str] | None = None,
    known_params: Sequence[str] | None = None,
) -> SearchSpace:
    """Parse the text of a space file (``path`` is used in messages only)."""
    path = Path(path) if path is not None else None
    data, where = read_yaml(text, path)
    data = {} if data is None else data
    try:
        file = SpaceFile.model_validate(data)
    except ValidationError as exc:
        raise file_error(exc, data, where, FIXES) from None
    params = {name: ParamSpec.of(name, p) for name, p in (file.params or {}).items()}
    space = SearchSpace(
        path=path,
        method=SEARCHED_METHOD if "method" in params else file.method,
        metric=file.metric,
        mode=file.mode,
        epochs=file.epochs,
        seeds=file.seeds,
        fixed=file.fixed or {},
        params=params,
        scenario_spec=file.scenarios or Scenarios(),
        sampler=file.sampler,
        gpus_per_trial=file.gpus_per_trial,
        description=file.description or "",
        enqueue=file.enqueue or [],
        candidates=file.candidates or [],
        _where=where,
    )
    _check(space, file.method, where, known_methods, known_params)
    return space


def _check(
    space: SearchSpace,
    method: str | None,
    where: Where,
    known_methods: Sequence[str] | None,
    known_params: Sequence[str] | None,
) -> None:
    """The rules that span sections of the file, or need the caller's names; ``method`` is
    the top-level key's value."""
    params, fixed = space.params, space.fixed
    for section, names in (("params", params), ("fixed", fixed)):
        for name in names:
            if name in RESERVED_KEYS or (section == "fixed" and name == "method"):
                raise where.error(
                    (section, name),
                    f"'{name}' is set by the sweep for every trial",
                    f"remove it from '{section}' (set '{name}' at the top level or in scenarios)",
                )
    if "method" in params and params["method"].type != "categorical":
        raise where.error(
            ("params", "method", "type"),
            "a searched method must be categorical",
            "write method: {type: categorical, choices: [...]}",
        )
    for k in fixed:
        if k in params:
            raise where.error(
                ("fixed", k),
                f"'{k}' is both fixed and searched",
                "remove it from 'fixed' or from 'params'",
            )
        for p in params.values():
            if p.type == "list" and k in p.optuna_names():
                raise where.error(
                    ("fixed", k), f"'{k}' clashes with the searched list '{p.name}'", "rename it"
                )
    if known_params is not None:
        for section, names in (("params", params), ("fixed", fixed)):
            for k in names:
                if k != "method" and k not in known_params:
                    raise _unknown(where, (section, k), "hyperparameter", k, known_params)
    if "method" in params and method is not None:
        raise where.error(
            ("method",),
            "the method is both fixed (top level) and searched (params.method)",
            "remove one of them",
        )
    if "method" not in params and method is None:
        raise where.error(
            ("method",),
            "missing key 'method'",
            "add e.g. 'method: emodna' at the top level (or search it under params.method)",
        )
    if known_methods is not None:
        searched = params["method"].choices if "method" in params else (method,)
        for i, m in enumerate(searched):
            if m not in known_methods:
                key = ("params", "method", "choices", i) if "method" in params else ("method",)
                raise _unknown(where, key, "method", m, known_methods)
    if space.sampler == "grid" and space.grid() is None:
        raise where.error(
            ("sampler",),
            "the grid sampler needs every parameter categorical (or int without log)",
            "choose another sampler or make the parameters categorical",
        )
    for i, item in enumerate(space.enqueue):
        for k, v in item.items():
            if k not in params:
                raise where.error(
                    ("enqueue", i, k),
                    f"'{k}' is not a searched parameter",
                    f"enqueue only names parameters under 'params': {', '.join(params)}",
                )
            if refused := params[k].refuses(v):
                raise where.error(("enqueue", i, k), *refused)
    _check_candidates(space, where)


def _check_candidates(space: SearchSpace, where: Where) -> None:
    """Each candidate is a valid TrainConfig over ``fixed``, named once."""
    from emodna.config import TrainConfig

    names = space.candidate_names()
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise where.error(
                ("candidates", i, "name"), f"candidate name {name!r} is used twice", "rename it"
            )
        values = {k: v for k, v in space.candidate(i).items() if k not in RESERVED_KEYS}
        try:
            TrainConfig.from_dict(values, "candidate")
        except ConfigError as exc:
            problem = str(exc).removeprefix("candidate: ")
            raise where.error(
                ("candidates", i), problem, "give TrainConfig fields (emodna train --help)"
            ) from None


def _unknown(where: Where, key: tuple, what: str, name: str, known: Sequence[str]) -> ConfigError:
    hint = did_you_mean(name, known)
    return where.error(
        key, f"unknown {what} {name!r}", f"{hint} known: {', '.join(known)}".lstrip()
    )


def load_space(
    path: str | Path,
    known_methods: Sequence[str] | None = None,
    known_params: Sequence[str] | None = None,
) -> SearchSpace:
    """Read and validate a search-space YAML file.

    ``known_methods``: if given, a method name (fixed or among searched choices) that is
    not in it is a :class:`ConfigError`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such search-space file; pass an existing YAML file (see search_spaces/)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the search-space file ({exc.strerror}); check the path and its permissions"
        ) from None
    return parse_space(text, path, known_methods=known_methods, known_params=known_params)
