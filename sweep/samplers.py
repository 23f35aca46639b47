"""Optuna samplers by name, as a search space's ``sampler:`` key or ``--sampler`` gives them."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import optuna

from emodna.errors import ConfigError
from sweep.space import SAMPLERS, SearchSpace


def make_sampler(
    name: str,
    seed: int | None = None,
    n_objectives: int = 1,
    *,
    space: SearchSpace | None = None,
    n_startup_trials: int | None = None,
    population_size: int | None = None,
) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by name: tpe, gp, cmaes, random, nsga2 or grid.

    ``grid`` needs ``space`` (every parameter categorical or a non-log int).
    """
    if name not in SAMPLERS:
        import difflib

        close = difflib.get_close_matches(str(name), SAMPLERS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"sampler: unknown sampler {name!r}; {hint}use one of {', '.join(SAMPLERS)}"
        )
    startup = {} if n_startup_trials is None else {"n_startup_trials": n_startup_trials}
    if name == "tpe":
        # Optuna 5 defaults: multivariate TPE and the constant liar (running trials count as
        # bad), which suits many configs in flight at once. Spelled out for older versions.
        # group: the space's candidates (sweep.study.open_study) are trials without
        # parameters; grouped TPE models the searched ones apart from them
        with warnings.catch_warnings():  # group is "experimental" since Optuna 2.8; it works
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True, **startup
            )
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, **startup)
    if name == "cmaes":
        if n_objectives > 1:
            raise ConfigError(
                "sampler: cmaes handles one objective only; use nsga2, tpe or gp for several"
            )
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise ConfigError(
                "sampler: cmaes needs the 'cmaes' package; run `pip install cmaes` or pick another sampler"
            ) from None
        return optuna.samplers.CmaEsSampler(seed=seed, **startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        kwargs = {"population_size": population_size} if population_size else {}
        return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)
    grid = space.grid() if space is not None else None
    if grid is None:
        raise ConfigError(
            "sampler: grid needs a space whose parameters are all categorical (or int without log); pick another sampler"
        )
    return _AskTellGridSampler(grid, seed=seed)


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose ``after_trial`` does not call ``study.stop()``.

    Optuna's GridSampler stops the study when the grid is exhausted, and ``Study.stop``
    raises RuntimeError outside ``Study.optimize`` -- i.e. on every ask/tell ``tell`` of the
    last grid point. The searcher caps the budget to the grid size instead.
    """

    def after_trial(self, study, trial, state, values) -> None:
        pass


def resolve_sampler(
    name: str | None, space: SearchSpace, n_objectives: int, budget: int
) -> tuple[str, int]:
    """(sampler name, budget): the name given, else the space's, else tpe (one objective) or
    nsga2 (several); a grid caps the budget at its size. A bad name or grid is a ConfigError."""
    name = name or space.sampler or ("tpe" if n_objectives == 1 else "nsga2")
    if name not in SAMPLERS:
        make_sampler(name)  # raises the ConfigError listing the valid names
    if name == "grid":
        grid = space.grid()
        if grid is None:
            make_sampler("grid", space=space)  # raises
        budget = min(budget, math.prod(len(v) for v in grid.values()))
    return name, budget


@dataclass(frozen=True)
class SamplerRecipe:
    """The searcher's sampler, made afresh for a study whose searcher already asked
    ``n_asked`` configs: its seed moved on by them (a sampler seeded as at the start would
    replay the same draws after a restart); NSGA-II's population a fifth of the budget,
    within 4..50."""

    name: str
    seed: int | None
    space: SearchSpace
    n_objectives: int
    budget: int
    n_startup_trials: int | None = None

    def __call__(self, n_asked: int = 0) -> optuna.samplers.BaseSampler:
        seed = self.seed + 7919 * n_asked if self.seed is not None and n_asked else self.seed
        pop = max(4, min(50, self.budget // 5)) if self.name == "nsga2" else None
        return make_sampler(
            self.name,
            seed,
            self.n_objectives,
            space=self.space,
            n_startup_trials=self.n_startup_trials,
            population_size=pop,
        )
