"""The ``scenarios`` block of a search space: its models (:class:`Scenarios`, checked when the
file is read) and :func:`expand_scenarios`, which expands it against the corpora present
when a sweep starts. A scenario is ``dict(source=, target=, task=)``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from emodna.labels import TASKS
from sweep.yamlkeys import Section, Where, did_you_mean, listed_once, problem


def as_list(value):
    """A single value stands for a list of one (``tasks: arousal``, ``seeds: 0``)."""
    return value if isinstance(value, list) else [value]


class Scenario(Section):
    unknown: ClassVar[str] = "unknown scenario field '{key}'"
    source: str
    target: str
    task: Literal[TASKS]

    @model_validator(mode="after")
    def _two_corpora(self) -> Scenario:
        if self.source.lower() == self.target.lower():  # corpus names ignore case
            raise problem(
                f"source and target are both {self.source}",
                "a scenario adapts to a different corpus",
                "target",
            )
        return self


class Scenarios(Section):
    """Every ordered pair of ``corpora`` (``all``: those found) for each of ``tasks``, or the
    scenarios under ``list``."""

    unknown: ClassVar[str] = "unknown scenario key '{key}'"
    corpora: (
        Annotated[
            list[str],
            Field(min_length=2),  # cross-corpus: a pair at least
            AfterValidator(lambda c: listed_once(c, "corpus", str.lower)),
        ]
        | Literal["all"]
    ) = "all"
    tasks: Annotated[
        list[Literal[TASKS]],
        BeforeValidator(as_list),
        Field(min_length=1),
        AfterValidator(lambda t: listed_once(t, "task")),
    ] = list(TASKS)
    scenarios: Annotated[list[Scenario], Field(min_length=1)] | None = Field(None, alias="list")

    @model_validator(mode="after")
    def _list_or_pairs(self) -> Scenarios:
        given = sorted({"corpora", "tasks"} & self.model_fields_set)
        if self.scenarios is not None and given:
            raise problem(
                "'list' cannot be combined with 'corpora'/'tasks'",
                "keep either 'list' or 'corpora' + 'tasks'",
                given[0],
            )
        return self


# The fix a message suggests for each key of the block
SCENARIO_FIXES = {
    "scenarios": "write 'corpora:' and 'tasks:', or 'list:'",
    "corpora": "write corpora: all or corpora: [EMODB, CASIA]",
    "tasks": f"write tasks: [{', '.join(TASKS)}]",
    "list": "write list: [{source: A, target: B, task: arousal}, ...]",
    "source": "write e.g. source: EMODB",
    "target": "write e.g. target: CASIA",
    "task": f"write one of {', '.join(TASKS)}",
}


def expand_scenarios(spec: Scenarios, available: Sequence[str], where: Where) -> list[dict]:
    """Expand the ``scenarios`` block against the corpora that are present.

    ``corpora: all`` takes every available corpus. Each scenario is
    ``dict(source=..., target=..., task=...)``; ordered pairs with source != target.
    """
    present = list(available)
    canon = {c.lower(): c for c in present}
    listed = ", ".join(present) if present else "none"

    def resolve(name: str, key: tuple) -> str:
        if str(name).lower() in canon:
            return canon[str(name).lower()]
        hint = did_you_mean(name, present)
        raise where.error(
            key,
            f"corpus '{name}' is not among the corpora found ({listed})",
            (f"{hint} " if hint else "") + "remove it or add its folder to the corpora directory",
        )

    if spec.scenarios is not None:
        return [
            dict(
                source=resolve(s.source, ("scenarios", "list", i, "source")),
                target=resolve(s.target, ("scenarios", "list", i, "target")),
                task=s.task,
            )
            for i, s in enumerate(spec.scenarios)
        ]
    if spec.corpora == "all":
        names = present
    else:
        names = [resolve(c, ("scenarios", "corpora", i)) for i, c in enumerate(spec.corpora)]
    if len(names) < 2:
        raise where.error(
            ("scenarios", "corpora"),
            f"cross-corpus scenarios need at least two corpora, found {listed}",
            "add corpora to the corpora directory or list two or more",
        )
    return [
        dict(source=s, target=t, task=task)
        for s, t in itertools.permutations(names, 2)
        for task in spec.tasks
    ]
