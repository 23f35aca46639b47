"""Where a key is in a YAML file, and errors that name it: ``<file>: line N: key 'a.b': problem;
fix`` (search spaces use it; every message names the file, the line, the key and the fix)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import yaml

from emodna.errors import ConfigError


class Where:
    """Line numbers of every key in a YAML document, from ``yaml.compose``."""

    def __init__(self, path: Path | None, root: yaml.Node | None):
        self.path = path
        self.lines: dict[tuple, int] = {}
        self.value_lines: dict[tuple, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, prefix: tuple) -> None:
        self.value_lines[prefix] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
                self.lines.setdefault(prefix + (key,), key_node.start_mark.line + 1)
                self._walk(value_node, prefix + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines.setdefault(prefix + (i,), item.start_mark.line + 1)
                self._walk(item, prefix + (i,))

    def line(self, key: tuple) -> int:
        """The line of ``key``, or of its closest ancestor that is in the file."""
        key = tuple(key)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.value_lines.get((), 1)

    def error(self, key: tuple, problem: str, fix: str, line: int | None = None) -> ConfigError:
        name = str(self.path) if self.path is not None else "<search space>"
        dotted = ".".join(str(k) for k in key) if key else "(top level)"
        where = line if line is not None else self.line(key)
        return ConfigError(f"{name}: line {where}: key '{dotted}': {problem}; {fix}")


def did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def unknown_key_error(where: Where, key: tuple, options: Sequence[str], what: str):
    hint = did_you_mean(key[-1], options)
    fix = f"{hint} " if hint else ""
    fix += f"valid {what}: {', '.join(options)}"
    return where.error(key, f"unknown {what[:-1] if what.endswith('s') else what} '{key[-1]}'", fix)


def duplicate_keys(node: yaml.Node, where: Where, prefix: tuple = ()) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise where.error(
                    prefix + (key,),
                    "the key appears twice in the same mapping",
                    "keep one of them",
                    line=key_node.start_mark.line + 1,
                )
            seen.add(key)
            duplicate_keys(value_node, where, prefix + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            duplicate_keys(item, where, prefix + (i,))


def check_keys(data: dict, allowed: Sequence[str], prefix: tuple, where: Where, what: str):
    for k in data:
        if k not in allowed:
            raise unknown_key_error(where, prefix + (k,), allowed, what)
