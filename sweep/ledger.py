"""The searcher's bookkeeping, in plain Python: which units of which config are queued, running,
done or failed, and which Tune trial runs which unit.

:class:`ConfigState` is one config (one Optuna trial); :class:`Ledger` is all of them, with the
counts the progress line shows. Nothing here talks to Optuna or Ray: after a restart the ledger
is rebuilt from :class:`StoredConfig` records, which ``sweep.study`` reads from the study.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from emodna.errors import ConfigError
from sweep.units import Units


@dataclass
class ConfigState:
    """The bookkeeping for one config (one Optuna trial)."""

    number: int
    params: dict
    queue: list[int]  # unit indices still to issue, in issue order
    running: dict[str, int] = field(default_factory=dict)  # Tune trial id -> unit index
    values: dict[int, float] = field(default_factory=dict)  # unit index -> final metric
    failed: list[int] = field(default_factory=list)
    state: str = "running"  # running | complete | pruned | failed
    pruned_after: int | None = None

    @property
    def n_done(self) -> int:
        return len(self.values) + len(self.failed)

    def record(self, idx: int, value: float | None) -> bool:
        """A unit's result (None: it failed). False when it is a duplicate of a unit already
        recorded (re-issued after a restore); a success after a failure replaces it."""
        if idx in self.values or (idx in self.failed and value is None):
            return False
        if idx in self.failed:
            self.failed.remove(idx)
        if idx in self.queue:
            self.queue.remove(idx)
        if value is None:
            self.failed.append(idx)
        else:
            self.values[idx] = value
        return True

    def penalised(self, worst: Callable[[int], float | None], mode: str) -> dict[int, float]:
        """The unit values, with each failed or diverged unit at ``worst(idx)`` (the worst
        value any config reached there), else this config's own worst: a config that breaks
        on a hard scenario is not told the mean of the easier units it survived, and ranks
        below the configs that completed, as in the summary."""
        values = dict(self.values)
        pick = min if mode == "max" else max
        for idx in self.failed:
            penalty = worst(idx)
            if penalty is None and self.values:
                penalty = pick(self.values.values())
            if penalty is not None:
                values[idx] = penalty
        return values

    def finish(self, state: str) -> None:
        """Told to the study: nothing more is issued."""
        self.state = state
        self.queue.clear()


@dataclass
class StoredConfig:
    """What the study holds about one config, as plain data (``sweep.study`` reads it)."""

    number: int
    state: str  # running | complete | pruned | failed
    params: dict
    unit_values: dict[str, float] = field(default_factory=dict)  # unit key -> metric
    failed_units: list[str] = field(default_factory=list)  # unit keys
    pruned_after: int | None = None


class Ledger:
    """Every config asked so far and every Tune trial issued for one, by Tune trial id."""

    def __init__(self, units: Units):
        self.units = units
        self.configs: dict[int, ConfigState] = {}
        self.trial_map: dict[str, tuple[int, int]] = {}  # Tune trial id -> (config, unit)
        self.live: set[str] = set()  # issued by this process and not complete
        self.n_issued = 0  # Tune trials issued (re-issues after a restart included)

    @property
    def n_asked(self) -> int:
        return len(self.configs)

    def add(self, number: int, params: dict, order: list[int]) -> ConfigState:
        cfg = ConfigState(number=number, params=params, queue=list(order))
        self.configs[number] = cfg
        return cfg

    def issue(self, trial_id: str, cfg: ConfigState) -> int:
        """The config's next unit goes out as Tune trial ``trial_id``; its index."""
        idx = cfg.queue.pop(0)
        cfg.running[trial_id] = idx
        self.trial_map[trial_id] = (cfg.number, idx)
        self.live.add(trial_id)
        self.n_issued += 1
        return idx

    def place(self, trial_id: str, result: dict | None) -> tuple[ConfigState, int] | None:
        """The config and unit a finished Tune trial ran, by its id or else by the config Tune
        attached to its result (a trial Tune resumed); None for a trial not of this sweep."""
        self.live.discard(trial_id)
        loc = self.trial_map.pop(trial_id, None) or self.units.locate(result)
        cfg = self.configs.get(loc[0]) if loc else None
        if cfg is None:
            return None
        cfg.running.pop(trial_id, None)
        return cfg, loc[1]

    def penalty(self, idx: int, mode: str) -> float | None:
        """The worst value any config reached on unit ``idx`` (None while none has one)."""
        seen = [c.values[idx] for c in self.configs.values() if idx in c.values]
        return (min if mode == "max" else max)(seen) if seen else None

    def running(self) -> Iterable[ConfigState]:
        return (c for c in self.configs.values() if c.state == "running")

    # ------------------------------------------------------------------ progress queries

    @property
    def pruned_config_ids(self) -> list[int]:
        return [n for n, c in self.configs.items() if c.state == "pruned"]

    @property
    def n_failed_units(self) -> int:
        return sum(len(c.failed) for c in self.configs.values())

    def units_done(self) -> int:
        return sum(c.n_done for c in self.configs.values())

    def units_left(self, budget: int) -> int:
        """The rest of the running configs plus ``budget`` less the configs asked, in units;
        an upper bound: a config pruned later skips the rest of its units."""
        running = sum(len(c.queue) + len(c.running) for c in self.running())
        return running + max(0, budget - self.n_asked) * len(self.units)

    def best_so_far(self, mode: str) -> tuple[int, float, int] | None:
        """(config, mean metric, units with a value) of the best config not pruned: configs
        with every unit done first, then the best mean over the units done."""
        sign = 1.0 if mode == "max" else -1.0
        scored = [
            (len(c.values) == len(self.units), sign * sum(c.values.values()) / len(c.values), n)
            for n, c in self.configs.items()
            if c.values and c.state != "pruned"
        ]
        if not scored:
            return None
        _, value, n = max(scored)
        return n, sign * value, len(self.configs[n].values)

    # ------------------------------------------------------------------ after a restart

    def in_flight(self) -> dict[str, tuple[int, str]]:
        """Tune trial id -> (config, unit key) of every unit issued and not in."""
        return {t: (n, self.units.keys[i]) for t, (n, i) in self.trial_map.items()}

    def rebuild(
        self,
        stored: Iterable[StoredConfig],
        order: Callable[[int], list[int]],
        in_flight: dict[str, tuple[int, str]],
        reissue: bool,
    ) -> None:
        """Start over from the study's records. ``in_flight``: Tune trial id -> (config, unit
        key) of the trials Tune had running at its last snapshot (it resumes them); with
        ``reissue`` their units are issued again first (the first result wins), else they
        are left to Tune. Every other unit not done is queued in ``order(config)``."""
        self.configs, self.trial_map, self.live = {}, {}, set()
        stored = sorted(stored, key=lambda r: r.number)
        if any(
            k not in self.units.index for r in stored for k in [*r.unit_values, *r.failed_units]
        ):
            raise ConfigError(
                "the study holds units of other scenarios or seeds than this sweep; restore with "
                "the same space file and corpora, or start a new sweep"
            )
        for rec in stored:
            cfg = self.add(rec.number, rec.params, order(rec.number))
            cfg.state, cfg.pruned_after = rec.state, rec.pruned_after
            for key, v in rec.unit_values.items():
                cfg.values[self.units.index[key]] = float(v)
            for key in rec.failed_units:
                i = self.units.index[key]
                if i not in cfg.values and i not in cfg.failed:
                    cfg.failed.append(i)
        for trial_id, (number, key) in in_flight.items():
            cfg, idx = self.configs.get(number), self.units.index.get(key)
            if cfg is not None and idx is not None and cfg.state == "running":
                self.trial_map[trial_id] = (number, idx)
                cfg.running[trial_id] = idx
        for cfg in self.configs.values():
            done = set(cfg.values) | set(cfg.failed)
            if cfg.state != "running":
                cfg.queue.clear()
                continue
            flying = [i for i in dict.fromkeys(cfg.running.values()) if i not in done]
            cfg.queue = [i for i in cfg.queue if i not in done and i not in flying]
            if reissue:
                cfg.queue = flying + cfg.queue
        self.n_issued = sum(c.n_done + len(c.running) for c in self.configs.values())
