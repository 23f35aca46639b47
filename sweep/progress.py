"""The sweep's progress line, which the searcher hands on after every finished unit:

``[sweep] 13/192 units done (0 failed, 1 configs pruned) · 4:31 elapsed · ETA <= 58:10 · best
so far: config 3, mean target_uar 71.2% over 24/24 units``.

:class:`Progress` keeps the timing; the counts and the best config are the ledger's. The ETA
is the mean duration of the units this process issued and saw finish, times the units left,
over the most units seen in flight at once. So it is right after a resume too, where Tune
finishes half-done units in seconds (they were not issued here and do not count); pruning
can only shorten it.
"""

from __future__ import annotations

import time

from sweep.plan import hms


class Progress:
    """Timing of the units this process issued (no state worth saving: a resumed sweep
    starts a new clock)."""

    def __init__(self):
        self.start: float | None = None
        self.issued_at: dict[str, float] = {}  # trial id -> when this process issued it
        self.durations: list[float] = []
        self.peak_in_flight = 0

    def begin(self) -> None:
        """The clock starts at the searcher's first suggestion."""
        if self.start is None:
            self.start = time.monotonic()

    def issued(self, trial_id: str, in_flight: int) -> None:
        self.issued_at[trial_id] = time.monotonic()
        self.peak_in_flight = max(self.peak_in_flight, in_flight)

    def ended(self, trial_id: str) -> None:
        began = self.issued_at.pop(trial_id, None)
        if began is not None:
            self.durations.append(time.monotonic() - began)

    def line(self, ledger, budget: int, metric: str, mode: str) -> str:
        """The progress line of a searcher's ``ledger`` (:class:`sweep.ledger.Ledger`) with
        ``budget`` configs, optimising ``metric`` (``mode`` max or min)."""
        done, left = ledger.units_done(), ledger.units_left(budget)
        parts = [
            f"[sweep] {done}/{done + left} units done ({ledger.n_failed_units} failed, "
            f"{len(ledger.pruned_config_ids)} configs pruned)"
        ]
        if self.start is not None:
            parts.append(f"{hms(time.monotonic() - self.start)} elapsed")
            if self.durations and left:
                mean = sum(self.durations) / len(self.durations)
                parts.append(f"ETA <= {hms(mean * left / max(1, self.peak_in_flight))}")
        best = ledger.best_so_far(mode)
        if best is not None:
            n, value, k = best
            score = f"{100 * value:.1f}%" if metric.startswith("target_") else f"{value:.3g}"
            parts.append(
                f"best so far: config {n}, mean {metric} {score} over {k}/{len(ledger.units)} units"
            )
        return " · ".join(parts)
