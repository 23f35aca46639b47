"""The ``scenarios`` block of a search space: checked when the file is read
(:func:`parse_scenarios`), expanded against the corpora present when a sweep starts
(:func:`expand_scenarios`). A scenario is ``dict(source=, target=, task=)``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from emodna.labels import TASKS
from sweep.yamlkeys import Where, check_keys, did_you_mean

SCENARIO_KEYS = ("corpora", "tasks", "list")
SCENARIO_ITEM_KEYS = ("source", "target", "task")


def parse_scenarios(spec: Any, where: Where) -> dict:
    key = ("scenarios",)
    if spec is None:
        return {"corpora": "all", "tasks": list(TASKS)}
    if not isinstance(spec, dict):
        raise where.error(
            key, f"expected a mapping, got {spec!r}", "write 'corpora:' and 'tasks:', or 'list:'"
        )
    check_keys(spec, SCENARIO_KEYS, key, where, "scenario keys")
    if "list" in spec:
        if "corpora" in spec or "tasks" in spec:
            bad = "corpora" if "corpora" in spec else "tasks"
            raise where.error(
                key + (bad,),
                "'list' cannot be combined with 'corpora'/'tasks'",
                "keep either 'list' or 'corpora' + 'tasks'",
            )
        items = spec["list"]
        if not isinstance(items, list) or not items:
            raise where.error(
                key + ("list",),
                "expected a non-empty list of {source, target, task}",
                "write list: [{source: A, target: B, task: arousal}, ...]",
            )
        out = []
        for i, item in enumerate(items):
            ik = key + ("list", i)
            if not isinstance(item, dict):
                raise where.error(
                    ik,
                    f"expected a mapping {{source, target, task}}, got {item!r}",
                    "write {source: A, target: B, task: arousal}",
                )
            check_keys(item, SCENARIO_ITEM_KEYS, ik, where, "scenario fields")
            for f in SCENARIO_ITEM_KEYS:
                if f not in item:
                    raise where.error(ik, f"missing field '{f}'", f"add '{f}:'")
            if item["task"] not in TASKS:
                raise where.error(
                    ik + ("task",),
                    f"unknown task {item['task']!r}",
                    f"use one of {', '.join(TASKS)}",
                )
            if str(item["source"]).lower() == str(item["target"]).lower():
                raise where.error(
                    ik + ("target",),
                    f"source and target are both {item['source']}",
                    "a scenario adapts to a different corpus",
                )
            out.append({f: str(item[f]) for f in SCENARIO_ITEM_KEYS})
        return {"list": out}
    corpora = spec.get("corpora", "all")
    if corpora != "all":
        if (
            not isinstance(corpora, list)
            or not corpora
            or not all(isinstance(c, str) for c in corpora)
        ):
            raise where.error(
                key + ("corpora",),
                f"expected 'all' or a list of corpus names, got {corpora!r}",
                "write corpora: all or corpora: [EMODB, CASIA]",
            )
        if len({c.lower() for c in corpora}) != len(corpora):
            raise where.error(
                key + ("corpora",), "a corpus is listed twice", "list each corpus once"
            )
        if len(corpora) < 2:
            raise where.error(
                key + ("corpora",),
                "cross-corpus scenarios need at least two corpora",
                "list two or more corpora, or write corpora: all",
            )
    tasks = spec.get("tasks", list(TASKS))
    if isinstance(tasks, str):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        raise where.error(
            key + ("tasks",),
            f"expected a non-empty list of tasks, got {tasks!r}",
            f"write tasks: [{', '.join(TASKS)}]",
        )
    for i, t in enumerate(tasks):
        if t not in TASKS:
            hint = did_you_mean(t, TASKS)
            raise where.error(
                key + ("tasks", i),
                f"unknown task {t!r}",
                (f"{hint} " if hint else "") + f"use one of {', '.join(TASKS)}",
            )
    if len(set(tasks)) != len(tasks):
        raise where.error(key + ("tasks",), "a task is listed twice", "list each task once")
    return {"corpora": corpora, "tasks": list(tasks)}


def expand_scenarios(spec: dict, available: Sequence[str], where: Where) -> list[dict]:
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

    if "list" in spec:
        out = []
        for i, item in enumerate(spec["list"]):
            out.append(
                dict(
                    source=resolve(item["source"], ("scenarios", "list", i, "source")),
                    target=resolve(item["target"], ("scenarios", "list", i, "target")),
                    task=item["task"],
                )
            )
        return out
    corpora = spec.get("corpora", "all")
    if corpora == "all":
        names = present
    else:
        names = [resolve(c, ("scenarios", "corpora", i)) for i, c in enumerate(corpora)]
    if len(names) < 2:
        raise where.error(
            ("scenarios", "corpora"),
            f"cross-corpus scenarios need at least two corpora, found {listed}",
            "add corpora to the corpora directory or list two or more",
        )
    tasks = spec.get("tasks", list(TASKS))
    return [
        dict(source=s, target=t, task=task)
        for s, t in itertools.permutations(names, 2)
        for task in tasks
    ]
