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
the line, the key and the fix (``sweep.yamlkeys``). One parameter is ``sweep.params``, the
``scenarios`` block ``sweep.scenarios``; this module reads the file and puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from emodna.errors import ConfigError
from sweep.params import ParamSpec, is_number, parse_param
from sweep.scenarios import expand_scenarios, parse_scenarios
from sweep.yamlkeys import Where, check_keys, did_you_mean, duplicate_keys

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
# Keys that the searcher puts into every trial config: a space may not define them.
RESERVED_KEYS = ("source", "target", "task", "seed", "config_id", "epochs")
DEFAULTS = {"metric": "target_uar", "mode": "max", "epochs": 30, "seeds": [0, 1, 2]}
SEARCHED_METHOD = "searched"


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
    _where: Where | None = field(default=None, repr=False, compare=False)

    @property
    def methods(self) -> list[str]:
        """Every method this space can produce: the fixed one, or the searched choices."""
        if "method" in self.params:
            return [str(c) for c in self.params["method"].choices]
        return [self.method]

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
        return sorted(sets, key=lambda s: FRONTENDS.index(s) if s in FRONTENDS else len(FRONTENDS))

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
    where = Where(path, root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise where.error(
            (),
            f"expected a mapping of keys at the top level, got {type(data).__name__}",
            "start the file with 'method:', 'params:' ...",
        )
    duplicate_keys(root, where)
    check_keys(data, TOP_LEVEL_KEYS, (), where, "top-level keys")

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
        params[pname] = parse_param(pname, pspec, where)
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
                    hint = did_you_mean(k, known_params)
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
                    hint = did_you_mean(m, known)
                    raise where.error(
                        ("params", "method", "choices", i),
                        f"unknown method {m!r}",
                        (f"{hint} " if hint else "") + f"known methods: {', '.join(known)}",
                    )
        elif method not in known:
            hint = did_you_mean(method, known)
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
            hint = did_you_mean(sampler, SAMPLERS)
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
        scenario_spec=parse_scenarios(data.get("scenarios"), where),
        sampler=sampler,
        description=str(description or ""),
        enqueue=enqueue,
        _where=where,
    )


def _parse_enqueue(spec: Any, params: dict[str, ParamSpec], where: Where) -> list[dict]:
    """``enqueue``: a list of partial configs (searched parameters only) that Optuna tries
    first, e.g. the classical baseline or today's defaults, so every ranking has them."""
    if spec is None:
        return []
    if not isinstance(spec, list) or not all(isinstance(item, dict) and item for item in spec):
        raise where.error(
            ("enqueue",),
            f"expected a list of mappings, got {spec!r}",
            "write enqueue: [{method: functionals_lr}, {normalize: speaker, bn: adabn}]",
        )
    for i, item in enumerate(spec):
        for k, v in item.items():
            if k not in params:
                raise where.error(
                    ("enqueue", i, k),
                    f"'{k}' is not a searched parameter",
                    f"enqueue only names parameters under 'params': {', '.join(params)}",
                )
            p = params[k]
            if p.type == "list":
                raise where.error(
                    ("enqueue", i, k), "a list parameter cannot be enqueued", "leave it out"
                )
            if p.type == "categorical" and v not in p.choices:
                raise where.error(
                    ("enqueue", i, k), f"{v!r} is not among the choices", f"use one of {p.choices}"
                )
            if p.type in ("float", "int") and (not is_number(v) or not p.low <= v <= p.high):
                raise where.error(
                    ("enqueue", i, k),
                    f"{v!r} is outside [{p.low}, {p.high}]",
                    "use a value in the range",
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
