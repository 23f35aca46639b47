"""The units of a sweep.

A *unit* is one (scenario, seed): :class:`Units` fixes their order (unit ``i`` is the Wilcoxon
pruner's step ``i``), their names (``EMODB-CASIA-arousal/seed0``) and, with several
objectives, which objective each belongs to. What the searcher knows about each config's units
(queued, running, done, failed) is ``sweep.ledger``'s.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from emodna.errors import ConfigError
from sweep.ranking import scenario_name

UNIT_KEYS = ("source", "target", "task", "seed", "config_id")


def unit_key(scenario: dict, seed: int) -> str:
    """``EMODB-CASIA-arousal/seed0``: how a unit is named in user attrs and summaries."""
    return f"{scenario_name(scenario['source'], scenario['target'], scenario['task'])}/seed{seed}"


class Units:
    """Every (scenario, seed) of a sweep, scenarios outer, seeds inner.

    With ``n_objectives > 1`` each objective is the mean over the units whose scenario has the
    same ``objective_split`` value (e.g. ``task``), in order of first appearance.
    """

    def __init__(
        self,
        scenarios: Sequence[dict],
        seeds: Sequence[int],
        n_objectives: int = 1,
        objective_split: str | None = None,
    ):
        if not scenarios:
            raise ConfigError(
                "scenarios: the sweep has no scenario; list corpora/tasks in the space file"
            )
        self.units: list[tuple[dict, int]] = [(dict(sc), s) for sc in scenarios for s in seeds]
        self.keys = [unit_key(sc, s) for sc, s in self.units]
        if len(set(self.keys)) != len(self.keys):
            raise ConfigError(
                "scenarios: a scenario is listed twice; list each (source, target, task) once"
            )
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.n_objectives = n_objectives
        self.split = objective_split or ("task" if n_objectives > 1 else None)
        self.groups: list[str] = []
        self.group_of: list[int] = [0] * len(self.units)
        if n_objectives > 1:
            for sc, _ in self.units:
                if self.split not in sc:
                    raise ConfigError(
                        f"objective_split: scenarios have no field {self.split!r}; use source, "
                        "target or task"
                    )
                if str(sc[self.split]) not in self.groups:
                    self.groups.append(str(sc[self.split]))
            if len(self.groups) != n_objectives:
                raise ConfigError(
                    f"directions: {n_objectives} objectives but the scenarios have "
                    f"{len(self.groups)} values of {self.split!r} ({', '.join(self.groups)}); "
                    "give one direction per value"
                )
            self.group_of = [self.groups.index(str(sc[self.split])) for sc, _ in self.units]

    def __len__(self) -> int:
        return len(self.units)

    def order(self, key: str, shuffle: bool = True, spread: bool = False) -> list[int]:
        """Unit indices in issue order: shuffled by ``key`` (the Wilcoxon pruner's docs ask
        for a random order, so pruning does not favour the first scenarios); with ``spread``,
        then taken round-robin over (target, task), so any first few units span them."""
        order = list(range(len(self.units)))
        if shuffle:
            random.Random(key).shuffle(order)
        if spread:
            groups: dict[tuple, list[int]] = {}
            for i in order:
                sc = self.units[i][0]
                groups.setdefault((sc["target"], sc["task"]), []).append(i)
            rounds = itertools.zip_longest(*groups.values())
            order = [i for batch in rounds for i in batch if i is not None]
        return order

    def objective_values(self, values: dict[int, float]) -> list[float] | None:
        """The mean value per objective, or None while an objective has no unit value."""
        per: list[list[float]] = [[] for _ in range(self.n_objectives)]
        for i, v in values.items():
            per[self.group_of[i]].append(v)
        if any(not g for g in per):
            return None
        return [sum(g) / len(g) for g in per]

    def locate(self, result: dict | None) -> tuple[int, int] | None:
        """(config id, unit index) from the config Tune attaches to a result (restarted
        trials); None for a result that names no unit of this sweep."""
        if not isinstance(result, dict) or not result:
            return None
        cfg = result.get("config") if isinstance(result.get("config"), dict) else None
        get = (lambda k: cfg.get(k)) if cfg is not None else (lambda k: result.get(f"config/{k}"))
        fields = {k: get(k) for k in UNIT_KEYS}
        if any(v is None for v in fields.values()):
            return None
        idx = self.index.get(unit_key(fields, fields["seed"]))
        if idx is None:
            return None
        try:
            return int(fields["config_id"]), idx
        except (TypeError, ValueError):  # a config id that is not a whole number: not ours
            return None
