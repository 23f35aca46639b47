"""A search-space file as YAML and as pydantic models, and errors that name the spot:
``<file>: line N: key 'a.b': problem; fix``.

:func:`read_yaml` reads the text and where each key is (:class:`Where`). The models
(``sweep.space``, ``sweep.params``, ``sweep.scenarios``) derive from :class:`Section`; what
pydantic finds wrong, :func:`file_error` turns into one such line. A validator that checks
what a type cannot say raises :func:`problem` with its own words, fix and key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from emodna.errors import ConfigError


class Where:
    """Line numbers of every key in a YAML document, from ``yaml.compose``."""

    def __init__(self, path: Path | None, root: yaml.Node | None):
        self.path = path
        self.name = str(path) if path is not None else "<search space>"
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
        dotted = ".".join(str(k) for k in key) if key else "(top level)"
        where = line if line is not None else self.line(key)
        return ConfigError(f"{self.name}: line {where}: key '{dotted}': {problem}; {fix}")


def did_you_mean(word: Any, options: Sequence) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def read_yaml(text: str, path: Path | None) -> tuple[Any, Where]:
    """The document and where its keys are. A syntax error or a key given twice in one
    mapping (which YAML would let the last one win) is a ConfigError naming the line."""
    where = Where(path, None)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(
            f"{where.name}: line {line}: YAML syntax error: {problem}; fix the YAML at that line "
            "(check indentation, colons and brackets)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{where.name}: line 1: YAML error: {' '.join(str(exc).split())}; fix the YAML"
        ) from None
    where = Where(path, root)
    _no_duplicate_keys(root, where)
    return data, where


def _no_duplicate_keys(node: yaml.Node | None, where: Where, prefix: tuple = ()) -> None:
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
            _no_duplicate_keys(value_node, where, prefix + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_duplicate_keys(item, where, prefix + (i,))


def problem(text: str, fix: str, *at: str | int) -> PydanticCustomError:
    """What a validator raises: the problem and the fix in the message's words, and ``at``,
    the key at fault below the one validated (``problem("empty range ...", "...", "low")``)."""
    return PydanticCustomError("problem", text, {"fix": fix, "at": at})


def listed_once(values: Sequence, what: str, same: Callable = lambda v: v) -> Sequence:
    """``values``, checked that none repeats (``same`` folds what counts as equal: case, ...)."""
    seen = []
    for i, value in enumerate(values):
        if same(value) in seen:
            raise problem(f"{what} {value!r} is listed twice", f"list each {what} once", i)
        seen.append(same(value))
    return values


class Section(BaseModel):
    """A mapping of a space file. A key it does not declare is refused naming the close match
    and the valid keys (pydantic's own extra="forbid" says neither)."""

    model_config = ConfigDict(extra="forbid")
    unknown: ClassVar[str] = "unknown key '{key}'"  # the problem; a subclass may word it

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        known = [info.alias or name for name, info in cls.model_fields.items()]
        for key in data if isinstance(data, dict) else ():
            if key not in known:
                hint = did_you_mean(key, known)
                fix = f"{hint} valid keys: {', '.join(known)}".lstrip()
                raise problem(cls.unknown.format(key=key, type=data.get("type")), fix, key)
        return data


# What a value should be, by pydantic's error type (with the error's ctx filled in)
EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "string_type": "a string",
    "string_too_short": "a non-empty string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "too_short": "{min_length} or more items",
    "greater_than": "a number above {gt}",
    "greater_than_equal": "{ge} or more",
    "literal_error": "{expected}",
}


def file_error(exc: ValidationError, data: Any, where: Where, fixes: dict[str, str]) -> ConfigError:
    """pydantic's first error as one line: file, line, key, problem, and the fix of the
    innermost key in ``fixes`` (``fixes[""]`` for the file as a whole)."""
    error = exc.errors(include_url=False)[0]
    loc, kind, value = error["loc"], error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    key = _in_file(loc, data)
    fix = fixes[next((k for k in reversed(loc) if isinstance(k, str) and k in fixes), "")]
    if kind == "problem":  # one of our validators: it worded the problem and the fix
        return where.error(key + ctx["at"], error["msg"], ctx["fix"])
    if kind == "missing":
        return where.error(key, f"missing field '{loc[-1]}'", fix)
    # a union told apart by a field ("type" of a parameter): that field missing or unknown
    if kind == "union_tag_not_found":
        field = ctx["discriminator"].strip("'")
        return where.error(key, f"missing field '{field}'", fixes[field])
    if kind == "union_tag_invalid":
        field = ctx["discriminator"].strip("'")
        hint = did_you_mean(ctx["tag"], re.findall(r"'([^']*)'", ctx["expected_tags"]))
        fix = f"{hint} {fixes[field]}".lstrip()
        return where.error(key + (field,), f"unknown {field} {ctx['tag']!r}", fix)
    if kind == "literal_error":  # one of a few words: the close match helps with a typo
        hint = did_you_mean(value, re.findall(r"'([^']*)'", ctx["expected"]))
        fix = f"{hint} {fix}".lstrip()
    expected = EXPECTED.get(kind)
    wrong = f"expected {expected.format(**ctx)}" if expected else error["msg"]
    return where.error(key, f"{wrong}, got {value!r}", fix)


def _in_file(loc: tuple, data: Any) -> tuple:
    """``loc`` as a key path of the file: without the parts pydantic adds that are not in it
    (a union's tag in ``params.lr.float.low``, ``[key]``, a missing field's name)."""
    key, node = (), data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            continue
        key += (part,)
    return key
