"""The project's Ray Tune searcher: Optuna proposes configs, Tune runs (config, scenario, seed).

One Optuna trial is one *config*. :class:`ScenarioSearcher` asks Optuna for a config, expands
it into one Tune trial per (scenario, seed) -- a *unit* (``sweep.units``) -- and tells Optuna
the mean of the metric over the units once they are all in. After each unit it reports the
value with the unit's index as the step and asks :class:`optuna.pruners.WilcoxonPruner`
whether the config is clearly worse than the best one so far; if so the config is told
PRUNED and its remaining units are never issued.

The searcher is a thin adapter of Tune's :class:`~ray.tune.search.Searcher` protocol over
three parts: the bookkeeping (``sweep.ledger``), the issue order and holds (``sweep.policy``)
and the study (``sweep.study``, which also says what each Optuna trial carries). The study
in persistent storage is the one record of the search: on ``Tuner.restore`` the searcher
rebuilds its bookkeeping from it. The only other thing :meth:`ScenarioSearcher.save` keeps,
at each of Tune's experiment snapshots, is which units Tune had in flight then (Tune resumes
exactly those), by Tune trial id.

After a restore, units that were in flight are issued again (``reissue_unfinished=True``)
while their old Tune trial ids stay known: the first result of a unit wins, a later
duplicate is ignored. Pair it with ``Tuner.restore(..., resume_unfinished=False)``; with
``reissue_unfinished=False`` the searcher waits for Tune to resume them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import uuid
from collections.abc import Callable, Sequence

import optuna
from ray.tune.search import Searcher

from emodna.errors import ConfigError
from sweep.ledger import ConfigState, Ledger
from sweep.policy import ASK, FINISHED, IssuePolicy
from sweep.progress import Progress
from sweep.samplers import SamplerRecipe, resolve_sampler
from sweep.space import SearchSpace
from sweep.study import StudyClient, direction, make_pruner
from sweep.units import Units

logger = logging.getLogger(__name__)


def metric_value(result: dict | None, metric: str) -> float | None:
    """The unit's final metric, or None where it failed, diverged or reported none."""
    try:
        value = float(result[metric]) if result and metric in result else math.nan
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def check_positive(name: str, value: int) -> None:
    """A budget of configs or a wave of units: a whole number of at least 1."""
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: must be a positive whole number, got {value!r}")


OLDER = "was started by an older emodna-sweep; finish it with that version or start a new sweep"


def read_snapshot(path: str) -> dict:
    """What :meth:`ScenarioSearcher.save` wrote: the searcher's id and the units in flight."""
    try:
        with open(path) as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"{path}: the sweep {OLDER}") from None


def check_layout(state: dict) -> None:
    """A searcher pickled by an emodna-sweep before the split (tuner.pkl of a sweep started
    with it) has none of the parts: refused in words, not with an AttributeError later."""
    if "ledger" not in state:
        raise ConfigError(f"the sweep being resumed {OLDER}")


def unit_config(space: SearchSpace, cfg: ConfigState, scenario: dict, seed: int) -> dict:
    """The Tune trial config of one unit of ``cfg``: its params, the scenario and seed."""
    config = {**cfg.params, **{k: scenario[k] for k in ("source", "target", "task")}}
    config.update(seed=seed, config_id=cfg.number, epochs=space.epochs)
    config.setdefault("method", space.method)
    return config


def check_agrees(what: str, given: str | None, ours: str, hint: str) -> None:
    """Tune's metric or mode, if given, must be the search space's."""
    if given is not None and given != ours:
        raise ConfigError(
            f"{what}: Tune was given {what} {given!r} but the search space says {ours!r}; {hint}"
        )


class Recorder:
    """A finished unit into the ledger and the study: its value, the pruner's verdict, and the
    config's final values once its last unit is in."""

    def __init__(self, ledger: Ledger, client: StudyClient, *, mode: str, prune: bool):
        self.ledger, self.client, self.mode, self.prune = ledger, client, mode, prune
        self.units = ledger.units

    def record(self, cfg: ConfigState, idx: int, value: float | None) -> None:
        """Unit ``idx`` of ``cfg`` is in with ``value`` (None: it failed or diverged)."""
        if cfg.state != "running" or not cfg.record(idx, value):
            return  # told already, or a duplicate of a unit recorded (re-issued after a restore)
        keys = self.units.keys
        attrs = {"unit_values": {keys[i]: v for i, v in sorted(cfg.values.items())}}
        if cfg.failed:
            attrs["failed_units"] = [keys[i] for i in sorted(cfg.failed)]
        self.client.set_attrs(cfg.number, **attrs)
        if self.prune and (value is not None or (value := self.penalty(idx)) is not None):
            self.client.report(cfg.number, value, idx)
            if cfg.n_done < len(self.units) and self.client.should_prune(cfg.number):
                self.tell_pruned(cfg)
                return
        if cfg.n_done == len(self.units):
            self.tell_final(cfg)

    def penalty(self, idx: int) -> float | None:
        return self.ledger.penalty(idx, self.mode)

    def tell_pruned(self, cfg: ConfigState) -> None:
        cfg.pruned_after = cfg.n_done
        attrs = {"pruned_after": cfg.n_done}
        if cfg.values:
            attrs["partial_mean"] = sum(cfg.values.values()) / len(cfg.values)
        self.client.set_attrs(cfg.number, **attrs)
        cfg.finish("pruned")
        self.client.tell_pruned(cfg.number)

    def settle(self) -> None:
        """Tell every running config whose units are all in (after a restart)."""
        for cfg in list(self.ledger.running()):
            if cfg.n_done == len(self.units):
                self.tell_final(cfg)

    def tell_final(self, cfg: ConfigState) -> None:
        """Every unit in: the mean per objective, failed units at their penalty (FAIL where an
        objective has no value at all)."""
        if cfg.failed:
            self.client.set_attrs(cfg.number, penalised_units=len(cfg.failed))
        values = self.units.objective_values(cfg.penalised(self.penalty, self.mode))
        cfg.finish("failed" if values is None else "complete")
        if values is None:
            self.client.tell_failed(cfg.number)
        else:
            self.client.tell(cfg.number, values)


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
        shuffle_units, wave: the issue order and waves (:class:`sweep.policy.IssuePolicy`);
            a wave holds only with pruning (without, it would only delay).
        reissue_unfinished: on :meth:`restore`, issue again the units that were in flight.
        progress: called with the progress line after every finished unit; default: logged
            at INFO on ``sweep.search``.
    """

    def __init__(
        self,
        space: SearchSpace,
        scenarios: Sequence[dict],
        *,
        study_name: str = "emodna-sweep",
        storage: str | os.PathLike | optuna.storages.BaseStorage | None = None,
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
        progress: Callable[[str], None] | None = None,
    ):
        super().__init__(metric=space.metric, mode=space.mode)
        check_positive("budget", budget)
        _ = wave is None or check_positive("wave", wave)
        self.space = space
        self.directions = [direction(d) for d in (directions or [space.mode])]
        self._units = Units(scenarios, space.seeds, len(self.directions), objective_split)
        self.units, self.unit_keys = self._units.units, self._units.keys  # unit i: step i
        self.sampler_name, budget = resolve_sampler(sampler, space, len(self.directions), budget)
        self.prune = bool(prune) and len(self.directions) == 1
        if prune and not self.prune:
            logger.info("ScenarioSearcher: no pruning with %d objectives", len(self.directions))
        keep = storage is None or isinstance(storage, optuna.storages.BaseStorage)
        self.storage = storage if keep else os.fspath(storage)  # a URL or path, in messages
        self.study_name, self.seed, self.reissue_unfinished = study_name, seed, reissue_unfinished
        wave = wave if self.prune else None
        self.policy = IssuePolicy(budget=budget, seed=seed, shuffle=shuffle_units, wave=wave)
        self.ledger = Ledger(self._units)
        self.client = StudyClient(
            name=study_name,
            storage=self.storage,
            directions=self.directions,
            pruner=make_pruner(self.prune, p_threshold, n_startup_steps),
            sampler=SamplerRecipe(
                self.sampler_name, seed, space, len(self.directions), budget, n_startup_trials
            ),
            enqueue=space.enqueue,
            candidates=space.candidate_items(),
        )
        self.recorder = Recorder(self.ledger, self.client, mode=self.mode, prune=self.prune)
        self._progress_to = progress
        self._uid = uuid.uuid4().hex
        self._progress = Progress()  # timing of this process's units, for the progress line

    budget = property(lambda self: self.policy.budget)
    wave = property(lambda self: self.policy.wave)
    study = property(lambda self: self.client.study, doc="The Optuna study.")

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec):
        check_agrees("metric", metric, self.metric, "pass the same metric to TuneConfig or none")
        check_agrees("mode", mode, self.mode, "make them agree")
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        # Handled here rather than by ConcurrencyLimiter: after a restore the limiter keeps
        # the ids of trials Tune may never resume, and would then block for good.
        self.policy.max_concurrent = int(max_concurrent)
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        self._progress.begin()
        nxt = self.policy.next(self.ledger)
        if nxt == ASK:
            number, params = self.client.ask(
                self.space.suggest, searcher_uid=self._uid, n_units=len(self.units)
            )
            nxt = self.ledger.add(number, params, self.policy.order(self._units, number))
        if not isinstance(nxt, ConfigState):
            return Searcher.FINISHED if nxt == FINISHED else None
        idx = self.ledger.issue(trial_id, nxt)
        self._progress.issued(trial_id, len(self.ledger.live))
        return unit_config(self.space, nxt, *self.units[idx])

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._progress.ended(trial_id)
        placed = self.ledger.place(trial_id, result)
        if placed is None:
            logger.debug("ScenarioSearcher: result for unknown trial %s ignored", trial_id)
        else:
            value = None if error else metric_value(result, self.metric)
            self.recorder.record(*placed, value)
        line = self._progress.line(self.ledger, self.budget, self.metric, self.mode)
        self._progress_to(line) if self._progress_to else logger.info("%s", line)

    def save(self, checkpoint_path: str) -> None:
        """Tune's experiment snapshot: the units in flight, which Tune will resume."""
        with open(checkpoint_path, "w") as f:
            json.dump({"searcher_uid": self._uid, "in_flight": self.ledger.in_flight()}, f)

    def restore(self, checkpoint_path: str) -> None:
        """Rebuild the bookkeeping from the study, then tell any config found complete."""
        saved = read_snapshot(checkpoint_path)
        self._uid = saved["searcher_uid"]
        stored = self.client.configs(self._uid, self.space.config_from_params)
        order = functools.partial(self.policy.order, self._units)
        self.ledger.rebuild(stored, order, saved["in_flight"], self.reissue_unfinished)
        self.client.reseed(self.ledger.n_asked)
        self._progress = Progress()
        self.recorder.settle()

    def __setstate__(self, state: dict) -> None:
        check_layout(state)
        self.__dict__.update(state, _progress=Progress())  # the clock starts in this process

    # ------------------------------------------------------------------ progress queries

    n_asked = property(lambda self: self.ledger.n_asked)
    n_units_issued = property(lambda self: self.ledger.n_issued)
    pruned_config_ids = property(lambda self: self.ledger.pruned_config_ids)

    def is_finished(self) -> bool:
        return self.policy.finished(self.ledger)
