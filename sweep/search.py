"""The project's Ray Tune searcher: Optuna proposes configs, Tune runs (config, scenario, seed).

One Optuna trial is one *config*. :class:`ScenarioSearcher` asks Optuna for a config, expands
it into one Tune trial per (scenario, seed) -- a *unit* -- and tells Optuna the mean of the
metric over the units once they are all in. Units of one config finish at different times,
so after each one the searcher reports the unit's value to Optuna with the unit's stable
index as the step and asks :class:`optuna.pruners.WilcoxonPruner` whether the config is
clearly worse than the best one on the units done so far; if so the config is told PRUNED
and its remaining units are never issued.

The Optuna study lives in persistent storage (SQLite URL, any RDB URL, or a journal file);
the searcher's own bookkeeping is pickled by :meth:`save` (Tune calls it at every
experiment checkpoint) and reloaded by :meth:`restore` (``Tuner.restore``).

Restore and Tune: units that were running when the searcher was saved are issued again
(``reissue_unfinished=True``, the default), while their old Tune trial ids stay known, so a
result that still arrives for one of them is recorded too -- the first result of a unit wins
and a later duplicate is ignored. Pair it with ``Tuner.restore(..., resume_unfinished=False)``
to avoid running those units twice; with ``reissue_unfinished=False`` the searcher waits for
Tune to resume them (``resume_unfinished=True``).

What each Optuna trial (config) carries, for summaries:
- ``params``: Optuna's view (a list parameter ``m`` appears as ``m_0 .. m_{k-1}``);
- user attr ``config``: the hyperparameters as the trainable receives them (lists rebuilt,
  fixed values, ``method``, ``epochs``);
- user attr ``unit_values``: ``{"EMODB-CASIA-arousal/seed0": 0.71, ...}`` for units done
  while the config was running; ``failed_units``: units that raised or reported no metric;
- ``intermediate_values``: the same values keyed by the unit's index (pruning only);
- state PRUNED with user attrs ``pruned_after`` (units done) and ``partial_mean``;
- user attrs ``searcher_uid`` and ``n_units``.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import random
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from emodna.errors import ConfigError
from sweep.progress import Progress
from sweep.ranking import scenario_name
from sweep.samplers import make_sampler
from sweep.space import SAMPLERS, SearchSpace
from sweep.storage import open_storage

logger = logging.getLogger(__name__)

STATE_VERSION = 1
UNIT_KEYS = ("source", "target", "task", "seed", "config_id")


# ----------------------------------------------------------------------------- helpers


def unit_key(scenario: dict, seed: int) -> str:
    """``EMODB-CASIA-arousal/seed0``: how a unit is named in user attrs and summaries."""
    return f"{scenario_name(scenario['source'], scenario['target'], scenario['task'])}/seed{seed}"


def _direction(d: str) -> str:
    d = str(d).lower()
    if d in ("max", "maximize"):
        return "maximize"
    if d in ("min", "minimize"):
        return "minimize"
    raise ConfigError(
        f"directions: unknown direction {d!r}; use 'max'/'maximize' or 'min'/'minimize'"
    )


@dataclass
class _Config:
    """The searcher's bookkeeping for one config (one Optuna trial)."""

    number: int
    params: dict
    queue: list[int]  # unit indices still to issue, in issue order
    running: dict[str, int] = field(default_factory=dict)  # Tune trial id -> unit index
    values: dict[int, float] = field(default_factory=dict)  # unit index -> final metric
    failed: list[int] = field(default_factory=list)
    state: str = "running"  # running | complete | pruned | failed
    pruned_after: int | None = None
    told_values: list[float] | None = None
    late: dict[int, float | None] = field(default_factory=dict)  # arrived after the tell

    @property
    def n_done(self) -> int:
        return len(self.values) + len(self.failed)


# ----------------------------------------------------------------------------- searcher


class ScenarioSearcher(Searcher):
    """Optuna ask/tell over configs; one Tune trial per (config, scenario, seed).

    Args:
        space: the parsed search space (metric, mode, seeds, params).
        scenarios: ``[dict(source=, target=, task=), ...]``, e.g. ``space.scenarios(corpora)``.
        study_name: the Optuna study name; an existing study of that name is continued.
        storage: an RDB URL, a .db path, a .log/.jsonl journal path, or None (in memory).
        sampler: tpe (default for one objective), nsga2 (default for several), gp, cmaes,
            random, grid; default: ``space.sampler`` or the above.
        budget: number of configs to ask Optuna for (capped to the grid size for ``grid``).
        seed: sampler seed, and the seed of the per-config unit order.
        prune: stop a config early with the Wilcoxon pruner (single objective only).
        directions: one direction per objective (``max``/``min``); default ``[space.mode]``.
            With several, each objective is the mean over the units whose scenario has the
            same ``objective_split`` value (default ``task``), in order of first appearance.
        p_threshold, n_startup_steps: :class:`optuna.pruners.WilcoxonPruner` settings.
        shuffle_units: issue each config's units in its own random order (recommended by
            the Wilcoxon pruner's docs so the pruning does not favour the first scenarios).
        reissue_unfinished: on :meth:`restore`, issue again the units that were running.
    """

    def __init__(
        self,
        space: SearchSpace,
        scenarios: Sequence[dict],
        study_name: str = "emodna-sweep",
        storage: str | os.PathLike | None = None,
        sampler: str | None = None,
        budget: int = 20,
        seed: int | None = 0,
        prune: bool = True,
        directions: Sequence[str] | None = None,
        objective_split: str | None = None,
        p_threshold: float = 0.1,
        n_startup_steps: int = 2,
        shuffle_units: bool = True,
        reissue_unfinished: bool = True,
        n_startup_trials: int | None = None,
    ):
        super().__init__(metric=space.metric, mode=space.mode)
        if not scenarios:
            raise ConfigError(
                "scenarios: the sweep has no scenario; list corpora/tasks in the space file"
            )
        if not isinstance(budget, int) or budget < 1:
            raise ConfigError(f"budget: must be a positive number of configs, got {budget!r}")
        self.space = space
        self.scenarios = [dict(s) for s in scenarios]
        self.units: list[tuple[dict, int]] = [(sc, s) for sc in self.scenarios for s in space.seeds]
        self.unit_keys = [unit_key(sc, s) for sc, s in self.units]
        if len(set(self.unit_keys)) != len(self.unit_keys):
            raise ConfigError(
                "scenarios: a scenario is listed twice; list each (source, target, task) once"
            )
        self._unit_index = {k: i for i, k in enumerate(self.unit_keys)}

        self.directions = [_direction(d) for d in (directions or [space.mode])]
        self.n_objectives = len(self.directions)
        self.objective_split = objective_split or ("task" if self.n_objectives > 1 else None)
        self.objective_groups: list[str] = []
        self._unit_group: list[int] = [0] * len(self.units)
        if self.n_objectives > 1:
            for sc, _ in self.units:
                if self.objective_split not in sc:
                    raise ConfigError(
                        f"objective_split: scenarios have no field {self.objective_split!r}; use source, target or task"
                    )
                g = str(sc[self.objective_split])
                if g not in self.objective_groups:
                    self.objective_groups.append(g)
            if len(self.objective_groups) != self.n_objectives:
                raise ConfigError(
                    f"directions: {self.n_objectives} objectives but the scenarios have "
                    f"{len(self.objective_groups)} values of {self.objective_split!r} "
                    f"({', '.join(self.objective_groups)}); give one direction per value"
                )
            self._unit_group = [
                self.objective_groups.index(str(sc[self.objective_split])) for sc, _ in self.units
            ]

        self.sampler_name = (
            sampler or space.sampler or ("tpe" if self.n_objectives == 1 else "nsga2")
        )
        if self.sampler_name not in SAMPLERS:
            make_sampler(self.sampler_name)  # raises the ConfigError listing the valid names
        if self.sampler_name == "grid":
            grid = space.grid()
            if grid is None:
                make_sampler("grid", space=space)  # raises
            budget = min(budget, math.prod(len(v) for v in grid.values()))
        self.budget = budget
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self.study_name = study_name
        self.storage = (
            None
            if storage is None
            else (
                storage if isinstance(storage, optuna.storages.BaseStorage) else os.fspath(storage)
            )
        )
        self.prune = bool(prune) and self.n_objectives == 1
        if prune and not self.prune:
            logger.info("ScenarioSearcher: no pruning with %d objectives", self.n_objectives)
        self.p_threshold = p_threshold
        self.n_startup_steps = n_startup_steps
        self.shuffle_units = shuffle_units
        self.reissue_unfinished = reissue_unfinished

        self._uid = uuid.uuid4().hex
        self._configs: dict[int, _Config] = {}
        self._trial_map: dict[str, tuple[int, int]] = {}  # Tune trial id -> (config, unit)
        self._n_asked = 0
        self._n_issued = 0
        self._live: set[str] = set()  # issued by this process and not complete
        self._max_concurrent: int | None = None
        self._study: optuna.Study | None = None
        self._handles: dict[int, optuna.Trial] = {}
        self._progress = Progress()  # timing of this process's units, for the progress line
        _ = self.study  # create (or load) the study now, so storage mistakes show up early

    # ------------------------------------------------------------------ study

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        seed = self.seed
        if seed is not None and self._n_asked:
            seed = seed + 7919 * self._n_asked  # after a restore: do not replay the same draws
        pop = None
        if self.sampler_name == "nsga2":
            pop = max(4, min(50, self.budget // 5))
        return make_sampler(
            self.sampler_name,
            seed,
            self.n_objectives,
            space=self.space,
            n_startup_trials=self.n_startup_trials,
            population_size=pop,
        )

    def _make_pruner(self) -> optuna.pruners.BasePruner:
        if not self.prune:
            return optuna.pruners.NopPruner()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(
                p_threshold=self.p_threshold, n_startup_steps=self.n_startup_steps
            )

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (created, or loaded by name from the storage)."""
        if self._study is None:
            storage = open_storage(self.storage)
            study = optuna.create_study(
                study_name=self.study_name,
                storage=storage,
                sampler=self._make_sampler(),
                pruner=self._make_pruner(),
                directions=self.directions,
                load_if_exists=True,
            )
            have = [d.name.lower() for d in study.directions]
            if have != self.directions:
                raise ConfigError(
                    f"study {self.study_name!r} in {self.storage} optimises {have}, not "
                    f"{self.directions}; pick another study name or the same objectives"
                )
            for params in self.space.enqueue:  # once: a resumed sweep finds them there
                study.enqueue_trial(params, skip_if_exists=True)
            self._study = study
        return self._study

    def _handle(self, number: int) -> optuna.Trial:
        """A live :class:`optuna.Trial` for a running config (rebuilt after a restore)."""
        if number not in self._handles:
            study = self.study
            trial_id = study._storage.get_trial_id_from_study_id_trial_number(
                study._study_id, number
            )
            self._handles[number] = optuna.trial.Trial(study, trial_id)
        return self._handles[number]

    # ------------------------------------------------------------------ Searcher API

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec
    ) -> bool:
        if metric is not None and metric != self.metric:
            raise ConfigError(
                f"metric: Tune was given metric {metric!r} but the search space optimises "
                f"{self.metric!r}; pass the same metric to TuneConfig or none"
            )
        if mode is not None and mode != self.mode:
            raise ConfigError(
                f"mode: Tune was given mode {mode!r} but the search space says {self.mode!r}; make them agree"
            )
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        # Handled here rather than by ConcurrencyLimiter: after a restore the limiter keeps
        # the ids of trials Tune may never resume, and would then block for good.
        self._max_concurrent = int(max_concurrent)
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        self._progress.begin()
        if self._max_concurrent is not None and len(self._live) >= self._max_concurrent:
            return None
        for cfg in self._configs.values():
            if cfg.state == "running" and cfg.queue:
                return self._issue(trial_id, cfg)
        if self._n_asked < self.budget:
            return self._issue(trial_id, self._ask())
        if all(c.state != "running" for c in self._configs.values()):
            return Searcher.FINISHED
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._record(trial_id, result, error)
        print(self._progress.line(self), flush=True)

    def _record(self, trial_id: str, result: dict | None, error: bool) -> None:
        self._live.discard(trial_id)
        self._progress.ended(trial_id)
        loc = self._trial_map.pop(trial_id, None) or self._locate(result)
        if loc is None:
            logger.debug("ScenarioSearcher: result for unknown trial %s ignored", trial_id)
            return
        number, idx = loc
        cfg = self._configs.get(number)
        if cfg is None:
            return
        cfg.running.pop(trial_id, None)
        value = None if error else self._extract(result)
        if cfg.state != "running":
            cfg.late.setdefault(idx, value)
            return
        if idx in cfg.values or (idx in cfg.failed and value is None):
            return  # a duplicate of a unit already recorded (re-issued after a restore)
        if idx in cfg.failed:  # a failure followed by a success of the same unit
            cfg.failed.remove(idx)
        if idx in cfg.queue:
            cfg.queue.remove(idx)
        if value is None:
            cfg.failed.append(idx)
        else:
            cfg.values[idx] = value
        handle = self._handle(number)
        handle.set_user_attr(
            "unit_values", {self.unit_keys[i]: v for i, v in sorted(cfg.values.items())}
        )
        if cfg.failed:
            handle.set_user_attr("failed_units", [self.unit_keys[i] for i in sorted(cfg.failed)])
        if value is not None and self.prune:
            handle.report(value, step=idx)
            if cfg.n_done < len(self.units) and handle.should_prune():
                self._tell_pruned(cfg)
                return
        if cfg.n_done == len(self.units):
            self._tell_final(cfg)

    def save(self, checkpoint_path: str) -> None:
        state = {
            "version": STATE_VERSION,
            "uid": self._uid,
            "study_name": self.study_name,
            "unit_keys": self.unit_keys,
            "n_asked": self._n_asked,
            "n_issued": self._n_issued,
            "configs": [asdict(c) for c in self._configs.values()],
            "trial_map": dict(self._trial_map),
        }
        with open(checkpoint_path, "wb") as f:
            pickle.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        if state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"{checkpoint_path}: searcher state of version {state.get('version')}, expected {STATE_VERSION}; restart the sweep under a new name"
            )
        if state["unit_keys"] != self.unit_keys:
            raise ConfigError(
                f"{checkpoint_path}: the saved sweep ran other scenarios or seeds than this one; "
                "restore with the same space file and corpora, or start a new sweep"
            )
        self._uid = state["uid"]
        self.study_name = state["study_name"]
        self._n_asked = state["n_asked"]
        self._n_issued = state["n_issued"]
        self._configs = {c["number"]: _Config(**c) for c in state["configs"]}
        self._trial_map = {k: tuple(v) for k, v in state["trial_map"].items()}
        self._live = set()
        self._study = None
        self._handles = {}
        self._progress = Progress()
        self._reconcile()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_study"] = None  # re-loaded from storage by name
        state["_handles"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._progress = Progress()  # elapsed time and ETA count from this process's start

    # ------------------------------------------------------------------ inspection

    @property
    def pruned_config_ids(self) -> list[int]:
        """Optuna trial numbers of the configs that were pruned."""
        return [n for n, c in self._configs.items() if c.state == "pruned"]

    @property
    def n_asked(self) -> int:
        return self._n_asked

    @property
    def n_units_issued(self) -> int:
        """Tune trials issued so far (re-issues after a restore included)."""
        return self._n_issued

    def config_summary(self) -> list[dict]:
        """One row per config: number, state, told value(s), units done/failed/pruned_after."""
        rows = []
        for n, c in self._configs.items():
            rows.append(
                dict(
                    config_id=n,
                    state=c.state,
                    values=c.told_values,
                    n_units=len(self.units),
                    n_done=c.n_done,
                    n_failed=len(c.failed),
                    pruned_after=c.pruned_after,
                    params=c.params,
                )
            )
        return rows

    @property
    def n_failed_units(self) -> int:
        """Units that raised or reported no metric, over all configs."""
        return sum(len(c.failed) for c in self._configs.values())

    def units_done(self) -> int:
        """Units finished so far (with a value or failed), over all configs asked."""
        return sum(c.n_done for c in self._configs.values())

    def units_left(self) -> int:
        """Units still to run: the rest of the running configs plus the configs not yet
        asked. An upper bound: a config pruned later skips the rest of its units."""
        running = sum(
            len(c.queue) + len(c.running) for c in self._configs.values() if c.state == "running"
        )
        return running + (self.budget - self._n_asked) * len(self.units)

    def best_so_far(self) -> tuple[int, float, int] | None:
        """(config, mean metric, units with a value) of the best config so far.

        Configs with every unit done come first; among them (or, before any is done, among
        the partial ones) the best mean of the metric over the units done wins.
        """
        sign = 1.0 if self.space.mode == "max" else -1.0
        scored = [
            (len(c.values) == len(self.units), sign * sum(c.values.values()) / len(c.values), n)
            for n, c in self._configs.items()
            if c.values and c.state != "pruned"
        ]
        if not scored:
            return None
        _, value, n = max(scored)
        return n, sign * value, len(self._configs[n].values)

    def is_finished(self) -> bool:
        return self._n_asked >= self.budget and all(
            c.state != "running" for c in self._configs.values()
        )

    # ------------------------------------------------------------------ internals

    def _ask(self) -> _Config:
        trial = self.study.ask()
        params = self.space.suggest(trial)
        order = list(range(len(self.units)))
        if self.shuffle_units:
            random.Random(f"{self.seed}-{trial.number}").shuffle(order)
        trial.set_user_attr("config", params)
        trial.set_user_attr("searcher_uid", self._uid)
        trial.set_user_attr("n_units", len(self.units))
        cfg = _Config(number=trial.number, params=params, queue=order)
        self._configs[trial.number] = cfg
        self._handles[trial.number] = trial
        self._n_asked += 1
        return cfg

    def _issue(self, trial_id: str, cfg: _Config) -> dict:
        idx = cfg.queue.pop(0)
        cfg.running[trial_id] = idx
        self._trial_map[trial_id] = (cfg.number, idx)
        self._live.add(trial_id)
        self._progress.issued(trial_id, len(self._live))
        self._n_issued += 1
        scenario, seed = self.units[idx]
        config = dict(cfg.params)
        config.update(
            source=scenario["source"],
            target=scenario["target"],
            task=scenario["task"],
            seed=seed,
            config_id=cfg.number,
            epochs=self.space.epochs,
        )
        config.setdefault("method", self.space.method)
        return config

    def _extract(self, result: dict | None) -> float | None:
        if not result or self.metric not in result:
            return None
        try:
            value = float(result[self.metric])
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    def _locate(self, result: dict | None) -> tuple[int, int] | None:
        """Find the unit from the config Tune attaches to a result (restarted trials)."""
        if not result:
            return None
        cfg = result.get("config") if isinstance(result.get("config"), dict) else None
        get = (lambda k: cfg.get(k)) if cfg is not None else (lambda k: result.get(f"config/{k}"))
        try:
            fields = {k: get(k) for k in UNIT_KEYS}
        except Exception:
            return None
        if any(v is None for v in fields.values()):
            return None
        idx = self._unit_index.get(unit_key(fields, fields["seed"]))
        if idx is None or fields["config_id"] not in self._configs:
            return None
        return int(fields["config_id"]), idx

    def _objective_values(self, cfg: _Config) -> list[float] | None:
        groups: list[list[float]] = [[] for _ in range(self.n_objectives)]
        for i, v in cfg.values.items():
            groups[self._unit_group[i]].append(v)
        if any(not g for g in groups):
            return None
        return [sum(g) / len(g) for g in groups]

    def _tell_final(self, cfg: _Config) -> None:
        values = self._objective_values(cfg)
        cfg.queue.clear()
        if values is None:
            cfg.state = "failed"
            self.study.tell(cfg.number, state=TrialState.FAIL)
        else:
            cfg.state = "complete"
            cfg.told_values = values
            self.study.tell(cfg.number, values if self.n_objectives > 1 else values[0])
        self._handles.pop(cfg.number, None)

    def _tell_pruned(self, cfg: _Config) -> None:
        handle = self._handle(cfg.number)
        cfg.pruned_after = cfg.n_done
        handle.set_user_attr("pruned_after", cfg.n_done)
        if cfg.values:
            handle.set_user_attr("partial_mean", sum(cfg.values.values()) / len(cfg.values))
        cfg.state = "pruned"
        cfg.queue.clear()
        self.study.tell(cfg.number, state=TrialState.PRUNED)
        self._handles.pop(cfg.number, None)

    def _reconcile(self) -> None:
        """After a restore: bring the bookkeeping in line with the study in storage."""
        study = self.study
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        # configs asked after the last save (asked in storage, unknown to the bookkeeping)
        for number, t in trials.items():
            if number in self._configs or t.state != TrialState.RUNNING:
                continue
            if t.user_attrs.get("searcher_uid") != self._uid:
                continue
            params = t.user_attrs.get("config") or self.space.config_from_params(t.params)
            order = list(range(len(self.units)))
            if self.shuffle_units:
                random.Random(f"{self.seed}-{number}").shuffle(order)
            self._configs[number] = _Config(number=number, params=params, queue=order)
            self._n_asked += 1
        self._configs = dict(sorted(self._configs.items()))
        for number, cfg in self._configs.items():
            if cfg.state != "running":
                continue
            t = trials.get(number)
            if t is None:
                continue
            if t.state.is_finished():  # told after the last save
                cfg.state = {
                    TrialState.COMPLETE: "complete",
                    TrialState.PRUNED: "pruned",
                }.get(t.state, "failed")
                cfg.told_values = list(t.values) if t.values else None
                cfg.pruned_after = t.user_attrs.get("pruned_after")
                cfg.queue.clear()
                continue
            # unit results that reached the storage after the last save
            for key, v in (t.user_attrs.get("unit_values") or {}).items():
                if key in self._unit_index:
                    cfg.values.setdefault(self._unit_index[key], float(v))
            for step, v in t.intermediate_values.items():
                if 0 <= step < len(self.units) and math.isfinite(v):
                    cfg.values.setdefault(int(step), float(v))
            for key in t.user_attrs.get("failed_units") or []:
                i = self._unit_index.get(key)
                if i is not None and i not in cfg.values and i not in cfg.failed:
                    cfg.failed.append(i)
            done = set(cfg.values) | set(cfg.failed)
            in_flight = [i for i in cfg.running.values() if i not in done]
            cfg.queue = [i for i in cfg.queue if i not in done]
            if self.reissue_unfinished:
                cfg.queue = [i for i in dict.fromkeys(in_flight) if i not in cfg.queue] + cfg.queue
            if cfg.n_done == len(self.units):
                self._tell_final(cfg)
