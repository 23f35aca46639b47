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
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import optuna

from emodna.errors import ConfigError
from sweep.storage import open_storage


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
    keeps it beside its study, so :func:`trial_handle` needs only ``BaseStorage``'s methods."""
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


def trial_handle(
    study: optuna.Study, storage: optuna.storages.BaseStorage, number: int
) -> optuna.Trial:
    """A live :class:`optuna.Trial` for the running trial ``number`` of ``study`` (opened on
    ``storage``), to report to and set attributes on after a restore, when the Trial that
    ``study.ask()`` gave is gone. Only public calls: the storage's ids by name and number."""
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return optuna.trial.Trial(study, trial_id)
