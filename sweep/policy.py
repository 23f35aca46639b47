"""What the searcher issues next: which config, which unit, and when to wait.

Plain Python over a :class:`sweep.ledger.Ledger`. The order is: a unit of a config already
running (oldest config first), else a new config while the budget lasts, else wait for the
units in flight, and finish once every config is told. Two holds: at most ``max_concurrent``
units of this process in flight, and, with a ``wave``, a config issues its first ``wave``
units and the rest only once those are done (the pruner sees them before more are spent).
"""

from __future__ import annotations

from dataclasses import dataclass

from sweep.ledger import ConfigState, Ledger
from sweep.units import Units

ASK = "ask"  # a new config
WAIT = "wait"  # nothing to issue now
FINISHED = "finished"  # every config asked and told


@dataclass
class IssuePolicy:
    """Issue order and holds.

    Args:
        budget: configs to ask for in all.
        seed: with the config's number, the seed of its unit order (the same after a restart).
        shuffle: each config's units in its own random order (the Wilcoxon pruner's docs ask
            for it, so pruning does not favour the first scenarios); else in the units' order.
        wave: units a config issues before the rest wait for them; None: all at once. The
            units of a wave are spread round-robin over (target, task).
        max_concurrent: units in flight at once (Tune's ``max_concurrent_trials``), or None.
    """

    budget: int
    seed: int | None = 0
    shuffle: bool = True
    wave: int | None = None
    max_concurrent: int | None = None

    def order(self, units: Units, number: int) -> list[int]:
        """Config ``number``'s units in issue order."""
        return units.order(f"{self.seed}-{number}", self.shuffle, self.wave is not None)

    def may_issue(self, cfg: ConfigState) -> bool:
        """False while the config's first wave is in flight (the rest waits for the pruner)."""
        return (
            self.wave is None
            or cfg.n_done >= self.wave
            or cfg.n_done + len(cfg.running) < self.wave
        )

    def next(self, ledger: Ledger) -> ConfigState | str:
        """The running config to issue a unit of, else :data:`ASK`, :data:`WAIT` or
        :data:`FINISHED`."""
        if self.max_concurrent is not None and len(ledger.live) >= self.max_concurrent:
            return WAIT
        for cfg in ledger.running():
            if cfg.queue and self.may_issue(cfg):
                return cfg
        if ledger.n_asked < self.budget:
            return ASK
        return FINISHED if self.finished(ledger) else WAIT

    def finished(self, ledger: Ledger) -> bool:
        """Every config of the budget asked and told."""
        return ledger.n_asked >= self.budget and not any(ledger.running())
