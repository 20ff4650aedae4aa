"""YAML plan files -> plain data plus the line and column of every node, within limits."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from planrun.errors import PlanError
from yaml.constructor import ConstructorError
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_PLAN_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_Base: type = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


class _PlanLoader(_Base):  # type: ignore[misc,valid-type]
    """Safe loading that refuses duplicate keys (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError(
                    None, None, "a mapping key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            if key in first:
                raise ConstructorError(
                    None, None, f"duplicate key {key!r} (first defined at line {first[key] + 1})", key_node.start_mark
                )
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


@dataclass
class YamlDoc:
    """A loaded YAML file: plain data and where each node was written (1-based)."""

    path: str
    data: Any
    value_marks: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)

    def locate(self, loc: tuple[Any, ...]) -> tuple[int, int]:
        """The mark of the longest prefix of ``loc`` that names a node (union tags are skipped)."""
        best = self.value_marks.get((), (1, 1))
        path: tuple[Any, ...] = ()
        for part in loc:
            if (*path, part) in self.value_marks:
                path = (*path, part)
                best = self.value_marks[path]
        return best

    def locate_key(self, loc: tuple[Any, ...]) -> tuple[int, int]:
        """The mark of the key of a mapping entry, else :meth:`locate`."""
        return self.key_marks.get(tuple(loc)) or self.locate(loc)

    def error(self, loc: tuple[Any, ...], message: str, *, key: bool = False) -> PlanError:
        line, col = self.locate_key(loc) if key else self.locate(loc)
        return PlanError(message, self.path, line, col)


def load_yaml(path: str | os.PathLike[str], *, display: str | None = None, max_bytes: int = MAX_PLAN_BYTES) -> YamlDoc:
    """Read and load a plan file. See :func:`load_yaml_text`."""
    name = display if display is not None else os.fspath(path)
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise _too_big(name, size, max_bytes)
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise PlanError(f"cannot read: {exc.strerror or exc}", name) from None
    return load_yaml_text(data, name, max_bytes=max_bytes)


def _too_big(name: str, size: int, limit: int) -> PlanError:
    return PlanError(
        f"plan file is {size} bytes, over the {limit}-byte limit (raise it with --max-plan-bytes)", name, 1, 1
    )


def load_yaml_text(data: bytes | str, display: str, *, max_bytes: int = MAX_PLAN_BYTES) -> YamlDoc:
    """Load one YAML document safely, with marks.

    :raises PlanError: located at ``display:line:col`` for a file that is too
        big, not UTF-8, not valid YAML, has duplicate keys, nests deeper than
        :data:`MAX_DEPTH`, uses more than :data:`MAX_ALIASES` aliases or
        expands past :data:`MAX_NODES` nodes, holds control characters, is
        empty, holds more than one document, or is not a mapping.
    """
    if isinstance(data, bytes):
        if len(data) > max_bytes:
            raise _too_big(display, len(data), max_bytes)
        text = _decode(data, display)
    else:
        text = data
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        aliases = _scan(text, display)
        loader = _PlanLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise PlanError("empty plan file", display, 1, 1)
            if aliases:
                _check_size(node, display)
            value = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, display) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise _reader_error(exc, text, display) from None
    if value is None:
        raise PlanError("empty plan file", display, 1, 1)
    doc = YamlDoc(display, value)
    _walk(node, doc)
    if not isinstance(value, dict):
        line, col = doc.locate(())
        raise PlanError(
            f"a plan file must be a mapping of keys (plan:, tasks:, ...), found {_kind(value)}", display, line, col
        )
    return doc


def _decode(data: bytes, display: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        col = len(data[line_start:start].decode("utf-8", "replace")) + 1
        raise PlanError(f"not valid UTF-8 (byte 0x{data[start]:02x})", display, line, col) from None


def _scan(text: str, display: str) -> int:
    """Bound depth, aliases and documents on the event stream; return the alias count.

    libyaml's composer recurses in C: a file of ``[[[[...`` nested 100,000
    deep crashes the interpreter instead of raising. The event parser does
    not recurse, so depth is checked here first.
    """
    loader = _PlanLoader(text)
    try:
        depth = aliases = documents = 0
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is MappingStartEvent or kind is SequenceStartEvent:
                depth += 1
                if depth > MAX_DEPTH:
                    raise _at(event, f"nesting deeper than {MAX_DEPTH} levels", display)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1
            elif kind is AliasEvent:
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _at(event, f"more than {MAX_ALIASES} aliases", display)
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _at(event, "a plan file holds one YAML document; found a second one", display)
            elif kind is StreamEndEvent:
                return aliases
    finally:
        loader.dispose()


def _at(event: Any, message: str, display: str) -> PlanError:
    mark = event.start_mark
    return PlanError(message, display, mark.line + 1, mark.column + 1)


def _check_size(root: Node, display: str) -> None:
    """Aliases share nodes; count what they expand to, without expanding it."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_NODES:
                mark = node.start_mark
                raise PlanError(f"alias expansion exceeds {MAX_NODES} nodes", display, mark.line + 1, mark.column + 1)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _walk(root: Node, doc: YamlDoc) -> None:
    """Record the marks of every node once, and refuse control characters."""
    values, keys = doc.value_marks, doc.key_marks
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        mark = node.start_mark
        values[path] = (mark.line + 1, mark.column + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            _refuse_control(node, doc.path)
        elif isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode):
                    _refuse_control(key_node, doc.path)
                key = _key_of(key_node)
                km = key_node.start_mark
                keys[(*path, key)] = (km.line + 1, km.column + 1)
                stack.append((value_node, (*path, key)))
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, (*path, i)))


def _key_of(node: Node) -> Any:
    """The key as the constructed data has it (``1`` for ``1:``, ``True`` for ``true:``)."""
    if not isinstance(node, ScalarNode):
        return node.start_mark.index
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return _RESOLVE.construct_object(node)
    except Exception:
        return node.value


def _refuse_control(node: ScalarNode, display: str) -> None:
    m = _CONTROL.search(node.value)
    if m is not None:
        mark = node.start_mark
        raise PlanError(f"control character U+{ord(m.group()):04X} in value", display, mark.line + 1, mark.column + 1)


def _yaml_error(exc: yaml.MarkedYAMLError, display: str) -> PlanError:
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or "invalid YAML"
    if exc.context and exc.context != exc.problem:
        message += f" ({exc.context})"
    if mark is None:
        return PlanError(message, display, 1, 1)
    return PlanError(message, display, mark.line + 1, mark.column + 1)


def _reader_error(exc: yaml.YAMLError, text: str, display: str) -> PlanError:
    position = getattr(exc, "position", 0) or 0
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    char = text[position] if position < len(text) else ""
    if char and _CONTROL.match(char):
        return PlanError(f"control character U+{ord(char):04X} is not allowed in YAML", display, line, col)
    return PlanError(f"invalid YAML: {str(exc).splitlines()[0]}", display, line, col)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


_RESOLVE = yaml.SafeLoader("")
