"""The project's Ray Tune searcher: Optuna proposes configs, Tune runs (config, scenario, seed).

One Optuna trial is one *config*. :class:`ScenarioSearcher` asks Optuna for a config, expands
it into one Tune trial per (scenario, seed) -- a *unit* (``sweep.units``) -- and tells Optuna
the mean of the metric over the units once they are all in. After each unit it reports the
value with the unit's index as the step and asks :class:`optuna.pruners.WilcoxonPruner`
whether the config is clearly worse than the best one so far; if so the config is told
PRUNED and its remaining units are never issued. The study lives in persistent storage
(``sweep.study``, which also says what each Optuna trial carries); the searcher's own
bookkeeping is pickled by :meth:`save` at every experiment checkpoint and reloaded by
:meth:`restore` (``Tuner.restore``).

After a restore, units that were running are issued again (``reissue_unfinished=True``)
while their old Tune trial ids stay known: the first result of a unit wins, a later
duplicate is ignored. Pair it with ``Tuner.restore(..., resume_unfinished=False)``; with
``reissue_unfinished=False`` the searcher waits for Tune to resume them.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import uuid
from collections.abc import Sequence
from dataclasses import asdict

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from emodna.errors import ConfigError
from sweep.progress import Progress
from sweep.samplers import make_sampler, resolve_sampler
from sweep.space import SearchSpace
from sweep.study import direction, make_pruner, open_study, storage_backend, trial_handle
from sweep.units import ConfigState, Units

logger = logging.getLogger(__name__)

STATE_VERSION = 1


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
        wave: with pruning, a config issues this many units (spread over targets and tasks)
            and the rest only once those are done and the pruner has seen them; None: all
            at once. On a big cluster every unit of a config would otherwise be running
            before the first one reports, and pruning would save nothing.
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
        wave: int | None = None,
    ):
        super().__init__(metric=space.metric, mode=space.mode)
        if not isinstance(budget, int) or budget < 1:
            raise ConfigError(f"budget: must be a positive number of configs, got {budget!r}")
        self.space = space
        self.directions = [direction(d) for d in (directions or [space.mode])]
        self.n_objectives = len(self.directions)
        self._units = Units(scenarios, space.seeds, self.n_objectives, objective_split)
        self.scenarios = [dict(s) for s in scenarios]
        self.units = self._units.units  # [(scenario, seed)]: unit i is the pruner's step i
        self.unit_keys = self._units.keys

        self.sampler_name, budget = resolve_sampler(sampler, space, self.n_objectives, budget)
        self.budget = budget
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self.study_name = study_name
        keep = storage is None or isinstance(storage, optuna.storages.BaseStorage)
        self.storage = storage if keep else os.fspath(storage)  # a URL or path, in messages
        self.prune = bool(prune) and self.n_objectives == 1
        if prune and not self.prune:
            logger.info("ScenarioSearcher: no pruning with %d objectives", self.n_objectives)
        self.p_threshold = p_threshold
        self.n_startup_steps = n_startup_steps
        self.shuffle_units = shuffle_units
        self.reissue_unfinished = reissue_unfinished
        if wave is not None and wave < 1:
            raise ConfigError(f"wave: a positive number of units per config, got {wave!r}")
        self.wave = wave if self.prune else None

        self._uid = uuid.uuid4().hex
        self._configs: dict[int, ConfigState] = {}
        self._trial_map: dict[str, tuple[int, int]] = {}  # Tune trial id -> (config, unit)
        self._n_asked = 0
        self._n_issued = 0
        self._live: set[str] = set()  # issued by this process and not complete
        self._max_concurrent: int | None = None
        self._study: optuna.Study | None = None
        self._backend: optuna.storages.BaseStorage | None = None  # the study's, opened with it
        self._handles: dict[int, optuna.Trial] = {}
        self._progress = Progress()  # timing of this process's units, for the progress line
        _ = self.study  # create (or load) the study now, so storage mistakes show up early

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

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (created, or loaded by name from the storage)."""
        if self._study is None:
            pruner = make_pruner(self.prune, self.p_threshold, self.n_startup_steps)
            self._backend = storage_backend(self.storage)
            self._study = open_study(
                self.study_name,
                self._backend,
                self._make_sampler(),
                pruner,
                self.directions,
                self.space.enqueue,
                self.space.candidate_items(),
            )
        return self._study

    def _handle(self, number: int) -> optuna.Trial:
        """A live :class:`optuna.Trial` for a running config (rebuilt after a restore)."""
        if number not in self._handles:
            self._handles[number] = trial_handle(self.study, self._backend, number)
        return self._handles[number]

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
            if cfg.state == "running" and cfg.queue and self._may_issue(cfg):
                return self._issue(trial_id, cfg)
        if self._n_asked < self.budget:
            return self._issue(trial_id, self._ask())
        return Searcher.FINISHED if self.is_finished() else None

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._record(trial_id, result, error)
        print(self._progress.line(self), flush=True)

    def _record(self, trial_id: str, result: dict | None, error: bool) -> None:
        self._live.discard(trial_id)
        self._progress.ended(trial_id)
        loc = self._trial_map.pop(trial_id, None) or self._units.locate(result)
        if loc is None:
            logger.debug("ScenarioSearcher: result for unknown trial %s ignored", trial_id)
            return
        number, idx = loc
        cfg = self._configs.get(number)
        if cfg is None:
            return
        cfg.running.pop(trial_id, None)
        value = None if error else self._extract(result)
        if cfg.state != "running" or not cfg.record(idx, value):
            return  # told already, or a duplicate of a unit recorded (re-issued after a restore)
        handle = self._handle(number)
        handle.set_user_attr(
            "unit_values", {self.unit_keys[i]: v for i, v in sorted(cfg.values.items())}
        )
        if cfg.failed:
            handle.set_user_attr("failed_units", [self.unit_keys[i] for i in sorted(cfg.failed)])
        if self.prune and (value is not None or (value := self._penalty(idx)) is not None):
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
        configs = [{k: v for k, v in c.items() if k != "late"} for c in state["configs"]]
        self._configs = {c["number"]: ConfigState(**c) for c in configs}  # "late": older saves
        self._trial_map = {k: tuple(v) for k, v in state["trial_map"].items()}
        self._live = set()
        self._study = self._backend = None
        self._handles = {}
        self._progress = Progress()
        self._reconcile()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_study"] = state["_backend"] = None  # re-loaded from storage by name
        state["_handles"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._progress = Progress()  # elapsed time and ETA count from this process's start

    @property
    def pruned_config_ids(self) -> list[int]:
        """Optuna trial numbers of the configs that were pruned."""
        return [n for n, c in self._configs.items() if c.state == "pruned"]

    n_asked = property(lambda self: self._n_asked)
    # Tune trials issued so far (re-issues after a restore included)
    n_units_issued = property(lambda self: self._n_issued)

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

    def _ask(self) -> ConfigState:
        trial = self.study.ask()
        name = trial.user_attrs.get("candidate")  # queued with its config (sweep.study)
        params = {**trial.user_attrs["config"], "candidate": name} if name else None
        params = params or self.space.suggest(trial)
        order = self._unit_order(trial.number)
        trial.set_user_attr("config", params)
        trial.set_user_attr("searcher_uid", self._uid)
        trial.set_user_attr("n_units", len(self.units))
        cfg = ConfigState(number=trial.number, params=params, queue=order)
        self._configs[trial.number] = cfg
        self._handles[trial.number] = trial
        self._n_asked += 1
        return cfg

    def _may_issue(self, cfg: ConfigState) -> bool:
        """False while the config's first wave is in flight (the rest waits for the pruner)."""
        return (
            self.wave is None
            or cfg.n_done >= self.wave
            or cfg.n_done + len(cfg.running) < self.wave
        )

    def _unit_order(self, number: int) -> list[int]:
        """Config ``number``'s units in issue order, the same on a restore."""
        return self._units.order(f"{self.seed}-{number}", self.shuffle_units, self.wave is not None)

    def _issue(self, trial_id: str, cfg: ConfigState) -> dict:
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

    def _penalty(self, idx: int) -> float | None:
        """A failed or diverged unit counts as the worst value any config reached there
        (ConfigState.penalised); None while none has one."""
        seen = [c.values[idx] for c in self._configs.values() if idx in c.values]
        return (min if self.space.mode == "max" else max)(seen) if seen else None

    def _tell_final(self, cfg: ConfigState) -> None:
        if cfg.failed:
            self._handle(cfg.number).set_user_attr("penalised_units", len(cfg.failed))
        values = self._units.objective_values(cfg.penalised(self._penalty, self.space.mode))
        cfg.queue.clear()
        if values is None:
            cfg.state = "failed"
            self.study.tell(cfg.number, state=TrialState.FAIL)
        else:
            cfg.state = "complete"
            cfg.told_values = values
            self.study.tell(cfg.number, values if self.n_objectives > 1 else values[0])
        self._handles.pop(cfg.number, None)

    def _tell_pruned(self, cfg: ConfigState) -> None:
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
            order = self._unit_order(number)
            self._configs[number] = ConfigState(number=number, params=params, queue=order)
            self._n_asked += 1
        self._configs = dict(sorted(self._configs.items()))
        for number, cfg in self._configs.items():
            if cfg.state != "running":
                continue
            t = trials.get(number)
            if t is None:
                continue
            cfg.merge_stored(t, self._units, self.reissue_unfinished)
            if cfg.state != "running":
                continue
            if cfg.n_done == len(self.units):
                self._tell_final(cfg)
