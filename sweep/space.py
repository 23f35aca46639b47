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

Parameter types: ``float`` (``log``, ``step``), ``int`` (``log``, ``step``), ``categorical``
(``choices``) and ``list`` (a fixed-length list of floats, suggested to Optuna as
``name_0 .. name_{k-1}`` and returned sorted unless ``sorted: false``).

Every mistake raises :class:`emodna.errors.ConfigError` with one line that names the file,
the line, the key and the fix.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from emodna.errors import ConfigError
from emodna.labels import TASKS

TOP_LEVEL_KEYS = (
    "method",
    "metric",
    "mode",
    "epochs",
    "seeds",
    "scenarios",
    "fixed",
    "params",
    "sampler",
    "enqueue",
    "description",
)
SAMPLERS = ("tpe", "gp", "cmaes", "random", "nsga2", "grid")  # sweep.samplers builds them
PARAM_TYPES = ("float", "int", "categorical", "list")
PARAM_FIELDS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
    "list": ("type", "length", "low", "high", "log", "sorted"),
}
ALL_PARAM_FIELDS = tuple(sorted({f for fields in PARAM_FIELDS.values() for f in fields}))
SCENARIO_KEYS = ("corpora", "tasks", "list")
SCENARIO_ITEM_KEYS = ("source", "target", "task")
# Keys that the searcher puts into every trial config: a space may not define them.
RESERVED_KEYS = ("source", "target", "task", "seed", "config_id", "epochs")
DEFAULTS = {"metric": "target_uar", "mode": "max", "epochs": 30, "seeds": [0, 1, 2]}
SEARCHED_METHOD = "searched"


# ----------------------------------------------------------------------------- errors


class _Where:
    """Line numbers of every key in a YAML document, from ``yaml.compose``."""

    def __init__(self, path: Path | None, root: yaml.Node | None):
        self.path = path
        self.lines: dict[tuple, int] = {}
        self.value_lines: dict[tuple, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, prefix: tuple) -> None:
        self.value_lines[prefix] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
                self.lines.setdefault(prefix + (key,), key_node.start_mark.line + 1)
                self._walk(value_node, prefix + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines.setdefault(prefix + (i,), item.start_mark.line + 1)
                self._walk(item, prefix + (i,))

    def line(self, key: tuple) -> int:
        """The line of ``key``, or of its closest ancestor that is in the file."""
        key = tuple(key)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.value_lines.get((), 1)

    def error(self, key: tuple, problem: str, fix: str, line: int | None = None) -> ConfigError:
        name = str(self.path) if self.path is not None else "<search space>"
        dotted = ".".join(str(k) for k in key) if key else "(top level)"
        where = line if line is not None else self.line(key)
        return ConfigError(f"{name}: line {where}: key '{dotted}': {problem}; {fix}")


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _unknown_key_error(where: _Where, key: tuple, options: Sequence[str], what: str):
    hint = _did_you_mean(key[-1], options)
    fix = f"{hint} " if hint else ""
    fix += f"valid {what}: {', '.join(options)}"
    return where.error(key, f"unknown {what[:-1] if what.endswith('s') else what} '{key[-1]}'", fix)


def _duplicate_keys(node: yaml.Node, where: _Where, prefix: tuple = ()) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise where.error(
                    prefix + (key,),
                    "the key appears twice in the same mapping",
                    "keep one of them",
                    line=key_node.start_mark.line + 1,
                )
            seen.add(key)
            _duplicate_keys(value_node, where, prefix + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, where, prefix + (i,))


# ----------------------------------------------------------------------------- params


def _is_number(x: Any) -> bool:
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

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """Optuna distributions keyed by the names Optuna sees."""
        if self.type == "float":
            d = optuna.distributions.FloatDistribution(
                self.low, self.high, log=self.log, step=self.step
            )
        elif self.type == "int":
            d = optuna.distributions.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        elif self.type == "categorical":
            d = optuna.distributions.CategoricalDistribution(list(self.choices))
        else:
            d = optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)
            return {n: d for n in self.optuna_names()}
        return {self.name: d}

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


def _parse_param(name: str, spec: Any, where: _Where) -> ParamSpec:
    key = ("params", name)
    if not isinstance(spec, dict):
        raise where.error(
            key,
            f"expected a mapping like {{type: float, low: ..., high: ...}}, got {spec!r}",
            "write the parameter as a mapping with a 'type' field",
        )
    for f in spec:
        if f not in ALL_PARAM_FIELDS:
            raise _unknown_key_error(where, key + (f,), ALL_PARAM_FIELDS, "param fields")
    if "type" not in spec:
        raise where.error(
            key, "missing field 'type'", f"add 'type:' with one of {', '.join(PARAM_TYPES)}"
        )
    ptype = spec["type"]
    if ptype not in PARAM_TYPES:
        hint = _did_you_mean(ptype, PARAM_TYPES)
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
        if not _is_number(spec[f]):
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
        if not _is_number(step) or step <= 0:
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
    scenario_spec: dict
    sampler: str | None = None
    description: str = ""
    enqueue: list[dict] = field(default_factory=list)  # configs Optuna tries first, in order
    _where: _Where | None = field(default=None, repr=False, compare=False)

    @property
    def methods(self) -> list[str]:
        """Every method this space can produce: the fixed one, or the searched choices."""
        if "method" in self.params:
            return [str(c) for c in self.params["method"].choices]
        return [self.method]

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        out: dict = {}
        for p in self.params.values():
            out.update(p.distributions())
        return out

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

    def suggest(self, trial: optuna.Trial) -> dict:
        """Hyperparameters for one config: fixed values, sampled params, method, epochs."""
        return self._complete({name: p.suggest(trial) for name, p in self.params.items()})

    def config_from_params(self, params: dict) -> dict:
        """Rebuild :meth:`suggest`'s output from an Optuna trial's ``params``."""
        return self._complete({name: p.from_params(params) for name, p in self.params.items()})

    def scenarios(self, available: Sequence[str]) -> list[dict]:
        """Expand the ``scenarios`` block against the corpora that are present.

        ``corpora: all`` takes every available corpus. Each scenario is
        ``dict(source=..., target=..., task=...)``; ordered pairs with source != target.
        """
        where = self._where or _Where(self.path, None)
        present = list(available)
        canon = {c.lower(): c for c in present}
        listed = ", ".join(present) if present else "none"

        def resolve(name: str, key: tuple) -> str:
            if str(name).lower() in canon:
                return canon[str(name).lower()]
            hint = _did_you_mean(name, present)
            raise where.error(
                key,
                f"corpus '{name}' is not among the corpora found ({listed})",
                (f"{hint} " if hint else "")
                + "remove it or add its folder to the corpora directory",
            )

        spec = self.scenario_spec
        if "list" in spec:
            out = []
            for i, item in enumerate(spec["list"]):
                out.append(
                    dict(
                        source=resolve(item["source"], ("scenarios", "list", i, "source")),
                        target=resolve(item["target"], ("scenarios", "list", i, "target")),
                        task=item["task"],
                    )
                )
            return out
        corpora = spec.get("corpora", "all")
        if corpora == "all":
            names = present
        else:
            names = [resolve(c, ("scenarios", "corpora", i)) for i, c in enumerate(corpora)]
        if len(names) < 2:
            raise where.error(
                ("scenarios", "corpora"),
                f"cross-corpus scenarios need at least two corpora, found {listed}",
                "add corpora to the corpora directory or list two or more",
            )
        tasks = spec.get("tasks", list(TASKS))
        return [
            dict(source=s, target=t, task=task)
            for s, t in itertools.permutations(names, 2)
            for task in tasks
        ]


def _check_keys(data: dict, allowed: Sequence[str], prefix: tuple, where: _Where, what: str):
    for k in data:
        if k not in allowed:
            raise _unknown_key_error(where, prefix + (k,), allowed, what)


def _parse_scenarios(spec: Any, where: _Where) -> dict:
    key = ("scenarios",)
    if spec is None:
        return {"corpora": "all", "tasks": list(TASKS)}
    if not isinstance(spec, dict):
        raise where.error(
            key, f"expected a mapping, got {spec!r}", "write 'corpora:' and 'tasks:', or 'list:'"
        )
    _check_keys(spec, SCENARIO_KEYS, key, where, "scenario keys")
    if "list" in spec:
        if "corpora" in spec or "tasks" in spec:
            bad = "corpora" if "corpora" in spec else "tasks"
            raise where.error(
                key + (bad,),
                "'list' cannot be combined with 'corpora'/'tasks'",
                "keep either 'list' or 'corpora' + 'tasks'",
            )
        items = spec["list"]
        if not isinstance(items, list) or not items:
            raise where.error(
                key + ("list",),
                "expected a non-empty list of {source, target, task}",
                "write list: [{source: A, target: B, task: arousal}, ...]",
            )
        out = []
        for i, item in enumerate(items):
            ik = key + ("list", i)
            if not isinstance(item, dict):
                raise where.error(
                    ik,
                    f"expected a mapping {{source, target, task}}, got {item!r}",
                    "write {source: A, target: B, task: arousal}",
                )
            _check_keys(item, SCENARIO_ITEM_KEYS, ik, where, "scenario fields")
            for f in SCENARIO_ITEM_KEYS:
                if f not in item:
                    raise where.error(ik, f"missing field '{f}'", f"add '{f}:'")
            if item["task"] not in TASKS:
                raise where.error(
                    ik + ("task",),
                    f"unknown task {item['task']!r}",
                    f"use one of {', '.join(TASKS)}",
                )
            if str(item["source"]).lower() == str(item["target"]).lower():
                raise where.error(
                    ik + ("target",),
                    f"source and target are both {item['source']}",
                    "a scenario adapts to a different corpus",
                )
            out.append({f: str(item[f]) for f in SCENARIO_ITEM_KEYS})
        return {"list": out}
    corpora = spec.get("corpora", "all")
    if corpora != "all":
        if (
            not isinstance(corpora, list)
            or not corpora
            or not all(isinstance(c, str) for c in corpora)
        ):
            raise where.error(
                key + ("corpora",),
                f"expected 'all' or a list of corpus names, got {corpora!r}",
                "write corpora: all or corpora: [EMODB, CASIA]",
            )
        if len({c.lower() for c in corpora}) != len(corpora):
            raise where.error(
                key + ("corpora",), "a corpus is listed twice", "list each corpus once"
            )
        if len(corpora) < 2:
            raise where.error(
                key + ("corpora",),
                "cross-corpus scenarios need at least two corpora",
                "list two or more corpora, or write corpora: all",
            )
    tasks = spec.get("tasks", list(TASKS))
    if isinstance(tasks, str):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        raise where.error(
            key + ("tasks",),
            f"expected a non-empty list of tasks, got {tasks!r}",
            f"write tasks: [{', '.join(TASKS)}]",
        )
    for i, t in enumerate(tasks):
        if t not in TASKS:
            hint = _did_you_mean(t, TASKS)
            raise where.error(
                key + ("tasks", i),
                f"unknown task {t!r}",
                (f"{hint} " if hint else "") + f"use one of {', '.join(TASKS)}",
            )
    if len(set(tasks)) != len(tasks):
        raise where.error(key + ("tasks",), "a task is listed twice", "list each task once")
    return {"corpora": corpora, "tasks": list(tasks)}


def parse_space(
    text: str,
    path: str | Path | None = None,
    known_methods: Sequence[str] | None = None,
    known_params: Sequence[str] | None = None,
) -> SearchSpace:
    """Parse the text of a space file (``path`` is used in messages only)."""
    path = Path(path) if path is not None else None
    name = str(path) if path is not None else "<search space>"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(
            f"{name}: line {line}: YAML syntax error: {problem}; fix the YAML at that line "
            "(check indentation, colons and brackets)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{name}: line 1: YAML error: {' '.join(str(exc).split())}; fix the YAML"
        ) from None
    where = _Where(path, root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise where.error(
            (),
            f"expected a mapping of keys at the top level, got {type(data).__name__}",
            "start the file with 'method:', 'params:' ...",
        )
    _duplicate_keys(root, where)
    _check_keys(data, TOP_LEVEL_KEYS, (), where, "top-level keys")

    # params first: 'method' may be searched
    raw_params = data.get("params") or {}
    if not isinstance(raw_params, dict):
        raise where.error(
            ("params",),
            f"expected a mapping of parameters, got {raw_params!r}",
            "write params: {name: {type: ..., ...}}",
        )
    params: dict[str, ParamSpec] = {}
    for pname, pspec in raw_params.items():
        if not isinstance(pname, str):
            raise where.error(
                ("params", pname), "parameter names must be strings", "quote the name"
            )
        if pname in RESERVED_KEYS:
            raise where.error(
                ("params", pname),
                f"'{pname}' is set by the sweep for every trial",
                f"remove it (set '{pname}' at the top level or in scenarios)",
            )
        params[pname] = _parse_param(pname, pspec, where)
    if "method" in params and params["method"].type != "categorical":
        raise where.error(
            ("params", "method", "type"),
            "a searched method must be categorical",
            "write method: {type: categorical, choices: [...]}",
        )

    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise where.error(
            ("fixed",), f"expected a mapping, got {fixed!r}", "write fixed: {name: value}"
        )
    for k in fixed:
        if k in RESERVED_KEYS or k == "method":
            raise where.error(
                ("fixed", k),
                f"'{k}' is set by the sweep for every trial",
                f"remove it from 'fixed' (set '{k}' at the top level)",
            )
        if k in params:
            raise where.error(
                ("fixed", k),
                f"'{k}' is both fixed and searched",
                "remove it from 'fixed' or from 'params'",
            )
        for pname, p in params.items():
            if p.type == "list" and k in p.optuna_names():
                raise where.error(
                    ("fixed", k), f"'{k}' clashes with the searched list '{pname}'", "rename it"
                )

    if known_params is not None:
        for section, names in (("params", params), ("fixed", fixed)):
            for k in names:
                if k != "method" and k not in known_params:
                    hint = _did_you_mean(k, known_params)
                    raise where.error(
                        (section, k),
                        f"unknown hyperparameter {k!r}",
                        (f"{hint} " if hint else "") + f"known: {', '.join(known_params)}",
                    )

    method = data.get("method")
    if "method" in params:
        if method is not None:
            raise where.error(
                ("method",),
                "the method is both fixed (top level) and searched (params.method)",
                "remove one of them",
            )
        method = SEARCHED_METHOD
    elif method is None:
        raise where.error(
            ("method",),
            "missing key 'method'",
            "add e.g. 'method: emodna' at the top level (or search it under params.method)",
            line=1,
        )
    elif not isinstance(method, str) or not method:
        raise where.error(
            ("method",), f"the method must be a name, got {method!r}", "write e.g. method: emodna"
        )

    if known_methods is not None:
        known = list(known_methods)
        if "method" in params:
            for i, m in enumerate(params["method"].choices):
                if m not in known:
                    hint = _did_you_mean(m, known)
                    raise where.error(
                        ("params", "method", "choices", i),
                        f"unknown method {m!r}",
                        (f"{hint} " if hint else "") + f"known methods: {', '.join(known)}",
                    )
        elif method not in known:
            hint = _did_you_mean(method, known)
            raise where.error(
                ("method",),
                f"unknown method {method!r}",
                (f"{hint} " if hint else "") + f"known methods: {', '.join(known)}",
            )

    metric = data.get("metric", DEFAULTS["metric"])
    if not isinstance(metric, str) or not metric:
        raise where.error(
            ("metric",),
            f"the metric must be a name, got {metric!r}",
            "write e.g. metric: target_uar",
        )
    mode = data.get("mode", DEFAULTS["mode"])
    if mode not in ("max", "min"):
        raise where.error(
            ("mode",), f"mode must be 'max' or 'min', got {mode!r}", "write mode: max or mode: min"
        )
    epochs = data.get("epochs", DEFAULTS["epochs"])
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise where.error(
            ("epochs",),
            f"epochs must be a positive integer, got {epochs!r}",
            "write e.g. epochs: 30",
        )
    seeds = data.get("seeds", DEFAULTS["seeds"])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise where.error(
            ("seeds",),
            f"seeds must be a non-empty list of integers, got {seeds!r}",
            "write e.g. seeds: [0, 1, 2]",
        )
    if len(set(seeds)) != len(seeds):
        raise where.error(("seeds",), "a seed is listed twice", "list each seed once")
    sampler = data.get("sampler")
    if sampler is not None:
        if sampler not in SAMPLERS:
            hint = _did_you_mean(sampler, SAMPLERS)
            raise where.error(
                ("sampler",),
                f"unknown sampler {sampler!r}",
                (f"{hint} " if hint else "") + f"valid samplers: {', '.join(SAMPLERS)}",
            )
        if sampler == "grid":
            grid_space = SearchSpace(path, method, metric, mode, epochs, seeds, fixed, params, {})
            if grid_space.grid() is None:
                raise where.error(
                    ("sampler",),
                    "the grid sampler needs every parameter categorical (or int without log)",
                    "choose another sampler or make the parameters categorical",
                )
    description = data.get("description", "")
    enqueue = _parse_enqueue(data.get("enqueue"), params, where)

    return SearchSpace(
        path=path,
        method=method,
        metric=metric,
        mode=mode,
        epochs=epochs,
        seeds=list(seeds),
        fixed=dict(fixed),
        params=params,
        scenario_spec=_parse_scenarios(data.get("scenarios"), where),
        sampler=sampler,
        description=str(description or ""),
        enqueue=enqueue,
        _where=where,
    )


def _parse_enqueue(spec: Any, params: dict[str, ParamSpec], where: _Where) -> list[dict]:
    """``enqueue``: a list of partial configs (searched parameters only) that Optuna tries
    first, e.g. the classical baseline or today's defaults, so every ranking has them."""
    if spec is None:
        return []
    if not isinstance(spec, list) or not all(isinstance(item, dict) and item for item in spec):
        raise where.error(
            ("enqueue",), f"expected a list of mappings, got {spec!r}",
            "write enqueue: [{method: functionals_lr}, {normalize: speaker, bn: adabn}]",
        )
    for i, item in enumerate(spec):
        for k, v in item.items():
            if k not in params:
                raise where.error(
                    ("enqueue", i, k), f"'{k}' is not a searched parameter",
                    f"enqueue only names parameters under 'params': {', '.join(params)}",
                )
            p = params[k]
            if p.type == "list":
                raise where.error(("enqueue", i, k), "a list parameter cannot be enqueued", "leave it out")
            if p.type == "categorical" and v not in p.choices:
                raise where.error(
                    ("enqueue", i, k), f"{v!r} is not among the choices", f"use one of {p.choices}"
                )
            if p.type in ("float", "int") and (not _is_number(v) or not p.low <= v <= p.high):
                raise where.error(
                    ("enqueue", i, k), f"{v!r} is outside [{p.low}, {p.high}]", "use a value in the range"
                )
    return [dict(item) for item in spec]


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
