"""The Optuna side of a sweep: one study per sweep, one Optuna trial per config.

What each Optuna trial (config) carries, for summaries:

- ``params``: Optuna's view (a list parameter ``m`` appears as ``m_0 .. m_{k-1}``);
- user attr ``config``: the hyperparameters as the trainable receives them (lists rebuilt,
  fixed values, ``method``, ``epochs``);
- user attr ``unit_values``: ``{"EMODB-CASIA-arousal/seed0": 0.71, ...}`` for units done
  while the config was running; ``failed_units``: units that raised or reported no metric;
- ``intermediate_values``: the same values keyed by the unit's index (pruning only);
- state PRUNED with user attrs ``pruned_after`` (units done) and ``partial_mean``;
- user attrs ``searcher_uid`` and ``n_units``.

:class:`StudyClient` is the searcher's one door to the study: ask, attributes, report, prune,
tell, and :meth:`StudyClient.configs` to rebuild the searcher's bookkeeping after a restart.
It names trials by number and writes through the storage's per-trial methods, so a config
asked before a restart is reported to the same way as one asked since; it never builds an
``optuna.trial.Trial`` itself (Optuna asks users not to).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from emodna.errors import ConfigError
from sweep.ledger import StoredConfig
from sweep.storage import open_storage

STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}


def direction(d: str) -> str:
    """``max``/``maximize`` -> ``maximize``, ``min``/``minimize`` -> ``minimize``."""
    d = str(d).lower()
    if d in ("max", "maximize"):
        return "maximize"
    if d in ("min", "minimize"):
        return "minimize"
    raise ConfigError(
        f"directions: unknown direction {d!r}; use 'max'/'maximize' or 'min'/'minimize'"
    )


def make_pruner(prune: bool, p_threshold: float, n_startup_steps: int):
    """Optuna's Wilcoxon pruner (a config's unit values against the best config's, paired by
    unit), or none."""
    if not prune:
        return optuna.pruners.NopPruner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.WilcoxonPruner(
            p_threshold=p_threshold, n_startup_steps=n_startup_steps
        )


def storage_backend(
    storage: str | os.PathLike | optuna.storages.BaseStorage | None,
) -> optuna.storages.BaseStorage:
    """The storage as an object of Optuna's public classes: :class:`RDBStorage` for a URL or
    SQLite file, :class:`JournalStorage` for a journal file, in memory for None. The sweep
    keeps it beside its study, so :class:`StudyClient` needs only ``BaseStorage``'s methods."""
    backend = open_storage(storage)
    if backend is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(backend, str):
        return optuna.storages.RDBStorage(backend)
    return backend


def open_study(
    name: str,
    storage: optuna.storages.BaseStorage,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    directions: Sequence[str],
    enqueue: Sequence[dict] = (),
    candidates: Sequence[tuple[str, dict]] = (),
) -> optuna.Study:
    """The study ``name`` in ``storage``, created or loaded; ``enqueue`` configs are queued
    once (a resumed sweep finds them there). A loaded study must optimise ``directions``.

    ``candidates`` (name, complete config) are queued first, once each, as trials without
    parameters: their config is the user attribute ``config`` and their name ``candidate``,
    so the searcher runs them as they are and the sampler learns nothing from them."""
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=list(directions),
        load_if_exists=True,
    )
    have = [d.name.lower() for d in study.directions]
    if have != list(directions):
        raise ConfigError(
            f"study {name!r} in {storage} optimises {have}, not {list(directions)}; pick "
            "another study name or the same objectives"
        )
    queued = {t.user_attrs.get("candidate") for t in study.get_trials(deepcopy=False)}
    for cand_name, config in candidates:
        if cand_name not in queued:
            study.enqueue_trial({}, user_attrs={"candidate": cand_name, "config": config})
    for params in enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    return study


class StudyClient:
    """One sweep's study, by trial number.

    Args:
        name: the study name; an existing study of that name is continued.
        storage: an RDB URL, a .db path, a .log/.jsonl journal path, a storage object, or None
            (in memory).
        directions: ``maximize``/``minimize``, one per objective.
        pruner: the study's pruner.
        sampler: the sampler for a study whose searcher asked that many configs before (a
            restart), e.g. a :class:`sweep.samplers.SamplerRecipe`.
        enqueue, candidates: as :func:`open_study` takes them.

    The study is opened at once (storage mistakes show up early); a pickled client opens it
    again from storage, by name, on first use.
    """

    def __init__(
        self,
        *,
        name: str,
        storage: Any,
        directions: Sequence[str],
        pruner: optuna.pruners.BasePruner,
        sampler: Callable[[int], optuna.samplers.BaseSampler],
        enqueue: Sequence[dict] = (),
        candidates: Sequence[tuple[str, dict]] = (),
    ):
        self.name, self.storage, self.directions = name, storage, list(directions)
        self.pruner, self.sampler = pruner, sampler
        self.enqueue, self.candidates = list(enqueue), list(candidates)
        self._study: optuna.Study | None = None
        _ = self.study

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self.backend = storage_backend(self.storage)
            self._study = open_study(
                self.name,
                self.backend,
                self.sampler(0),
                self.pruner,
                self.directions,
                self.enqueue,
                self.candidates,
            )
            self._study_id = self.backend.get_study_id_from_name(self.name)
            self._ids: dict[int, int] = {}  # trial number -> the storage's trial id
        return self._study

    def __getstate__(self) -> dict:
        keep = ("name", "storage", "directions", "pruner", "sampler", "enqueue", "candidates")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _study=None)

    def reseed(self, n_asked: int) -> None:
        """Ask with the sampler for ``n_asked`` configs asked before (the study loaded again
        with it): after a restart the draws go on rather than repeat."""
        backend = self.study and self.backend  # opened first, if it is not
        self._study = optuna.load_study(
            study_name=self.name, storage=backend, sampler=self.sampler(n_asked), pruner=self.pruner
        )

    def ask(self, suggest: Callable[[optuna.Trial], dict], **attrs) -> tuple[int, dict]:
        """A new config: (trial number, params). A candidate queued with its config
        (:func:`open_study`) runs as it is; any other trial's params come from
        ``suggest(trial)``. The params are stored as user attr ``config``, with ``attrs``."""
        trial = self.study.ask()
        name = trial.user_attrs.get("candidate")
        params = {**trial.user_attrs["config"], "candidate": name} if name else suggest(trial)
        for key, value in {"config": params, **attrs}.items():
            trial.set_user_attr(key, value)
        return trial.number, params

    def _trial_id(self, number: int) -> int:
        _ = self.study  # opened again after unpickling, with its ids
        if number not in self._ids:
            get = self.backend.get_trial_id_from_study_id_trial_number
            self._ids[number] = get(self._study_id, number)
        return self._ids[number]

    def set_attrs(self, number: int, **attrs) -> None:
        """User attributes of the running trial ``number``."""
        for key, value in attrs.items():
            self.backend.set_trial_user_attr(self._trial_id(number), key, value)

    def report(self, number: int, value: float, step: int) -> None:
        """An intermediate value (a unit's, at the unit's index) for the pruner; as with
        ``Trial.report``, a step reported before keeps its first value."""
        trial_id = self._trial_id(number)
        if step not in self.backend.get_trial(trial_id).intermediate_values:
            self.backend.set_trial_intermediate_value(trial_id, step, float(value))

    def should_prune(self, number: int) -> bool:
        """The study's pruner on the trial as stored now (what ``Trial.should_prune`` asks)."""
        trial = self.backend.get_trial(self._trial_id(number))
        return self.study.pruner.prune(self.study, trial)

    def tell(self, number: int, values: Sequence[float]) -> None:
        """Complete: one value per objective."""
        self.study.tell(number, list(values) if len(values) > 1 else values[0])

    def tell_pruned(self, number: int) -> None:
        self.study.tell(number, state=TrialState.PRUNED)

    def tell_failed(self, number: int) -> None:
        self.study.tell(number, state=TrialState.FAIL)

    def trials(self, **attrs) -> list[FrozenTrial]:
        """The study's trials whose user attributes include ``attrs``."""
        every = self.study.get_trials(deepcopy=False)
        return [t for t in every if all(t.user_attrs.get(k) == v for k, v in attrs.items())]

    def configs(self, searcher_uid: str, from_params: Callable[[dict], dict]) -> list[StoredConfig]:
        """The configs one searcher asked (user attr ``searcher_uid``), as stored now: what
        rebuilds its bookkeeping after a restart. ``from_params`` rebuilds a config from
        Optuna's params where the ``config`` attribute is missing."""
        return [
            StoredConfig(
                number=t.number,
                state=STATES.get(t.state, "running" if t.state == TrialState.RUNNING else "failed"),
                params=t.user_attrs.get("config") or from_params(t.params),
                unit_values=dict(t.user_attrs.get("unit_values") or {}),
                failed_units=list(t.user_attrs.get("failed_units") or []),
                pruned_after=t.user_attrs.get("pruned_after"),
            )
            for t in self.trials(searcher_uid=searcher_uid)
        ]
