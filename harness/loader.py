"""YAML plan files -> plain data plus the line and column of every node, within limits."""

from __future__ import annotations

import datetime
import errno
import functools
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from sys import intern
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver

from planrun.atomic import read_upto
from planrun.errors import PlanError

#: Plan files bigger than this are refused (``--max-plan-bytes`` raises it).
MAX_PLAN_BYTES = 1 << 20
#: Collections nested deeper than this are refused (also counted through aliases).
MAX_DEPTH = 64
#: Alias (``*ref``) occurrences allowed in one file.
MAX_ALIASES = 100
#: Nodes allowed in one file once aliases are expanded (keys count).
MAX_NODES = 100_000

_WITH_LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))
_Base: type = yaml.CSafeLoader if _WITH_LIBYAML else yaml.SafeLoader

# Composing recurses once per nesting level (in C with libyaml, which crashes
# somewhere past 20,000 levels on an 8 MiB stack; in Python, which raises
# RecursionError near 1,000 frames). Files whose nesting provably stays under
# this bound skip the event pre-pass and get their depth checked on the tree.
_COMPOSE_SAFE_DEPTH = 1000 if _WITH_LIBYAML else 200

_STR: str = Resolver.DEFAULT_SCALAR_TAG  # the very object the resolver hands out: == is an identity check
_VALUE = "tag:yaml.org,2002:value"
_MERGE = "tag:yaml.org,2002:merge"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1
_LEAD_LIMIT = 200
_DEEP_LEAD = re.compile(rf"\n[ \t?:-]{{{_LEAD_LIMIT}}}")
_DEEP_FIRST_LEAD = re.compile(rf"[ \t?:-]{{{_LEAD_LIMIT}}}")
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_KEY_ONLY = re.compile(r"[ \t]+[A-Za-z_$][\w$-]*[ \t]*$")


class _PlanLoader(_Base):  # type: ignore[misc,valid-type]
    """Safe loading with the standard YAML 1.1 tags and resolvers only.

    The tables are copied so that a plugin registering constructors or
    resolvers on PyYAML's shared loaders cannot change how plans read.
    """

    yaml_constructors = dict(SafeConstructor.yaml_constructors)
    yaml_multi_constructors = dict(SafeConstructor.yaml_multi_constructors)
    yaml_implicit_resolvers = {k: list(v) for k, v in Resolver.yaml_implicit_resolvers.items()}
    yaml_path_resolvers: dict[Any, Any] = {}

    #: plain scalar -> its tag. With the copied tables above and no path resolvers the
    #: tag depends on the text alone; bounded, so keys and common words stay, the rest is computed.
    _tags: dict[str, str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            tag = self._tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._tags) < _TAG_CACHE_SIZE:
                    self._tags[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


_TAG_CACHE_SIZE = 4096


@dataclass
class YamlDoc:
    """A loaded YAML file: plain data and where each node was written (1-based).

    Paths are tuples of mapping keys (as constructed: ``1:`` gives ``1``) and
    list indexes, ``()`` being the top-level node. A node reached through an
    alias keeps its marks under the path where it was first met.
    """

    path: str
    data: Any
    value_marks: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)
    #: The text the marks refer to (decoded, without a BOM): loading it again gives the same marks.
    text: str | None = None
    #: ``(path, value)`` of every scalar that is not a string, boolean or null (numbers, dates), when the
    #: fast path loaded the file; ``None``: not listed (look through :attr:`data`).
    numbers: list[tuple[tuple[Any, ...], Any]] | None = None
    #: The SHA-256 (hex) of the bytes this was loaded from; ``None`` when it was loaded from text.
    sha256: str | None = None

    def locate(self, loc: tuple[Any, ...]) -> tuple[int, int]:
        """The ``(line, col)`` of the deepest node named by ``loc``.

        Parts of ``loc`` that name no node (pydantic's union tags such as
        ``'list[str]'``) are skipped; so is everything past a missing key.

        :param loc: a path of keys and indexes.
        :return: 1-based line and column; ``(1, 1)`` if nothing matches.
        """
        marks = self.value_marks
        try:
            exact = marks.get(loc)  # the usual question: a node that is there
        except TypeError:
            exact = None
        if exact is not None:
            return exact
        best = marks.get((), (1, 1))
        path: tuple[Any, ...] = ()
        for part in loc:
            candidate = (*path, part)
            try:
                mark = marks.get(candidate)
            except TypeError:  # an unhashable part names no node
                continue
            if mark is not None:
                path, best = candidate, mark
        return best

    def locate_key(self, loc: tuple[Any, ...]) -> tuple[int, int]:
        """The ``(line, col)`` of the key of the mapping entry ``loc``, else :meth:`locate`.

        :param loc: a path of keys and indexes.
        :return: 1-based line and column.
        """
        try:
            mark = self.key_marks.get(tuple(loc))
        except TypeError:
            mark = None
        return mark if mark is not None else self.locate(loc)

    def error(self, loc: tuple[Any, ...], message: str, *, key: bool = False) -> PlanError:
        """A :class:`~planrun.errors.PlanError` located at ``loc`` in this file.

        :param loc: a path of keys and indexes.
        :param message: what is wrong, one line.
        :param key: point at the entry's key rather than its value.
        :return: the error, for the caller to raise or collect.
        """
        line, col = self.locate_key(loc) if key else self.locate(loc)
        return PlanError(message, self.path, line, col)


def load_yaml(path: str | os.PathLike[str], *, display: str | None = None, max_bytes: int = MAX_PLAN_BYTES) -> YamlDoc:
    """Read a plan file and load it with :func:`load_yaml_text`.

    The size is checked before the file is read.

    :param path: the file to read.
    :param display: the path to print in messages (default: ``path`` as given).
    :param max_bytes: refuse files bigger than this.
    :return: the loaded document.
    :raises PlanError: for a file that cannot be read, see also :func:`load_yaml_text`.
    """
    name = display if display is not None else os.fspath(path)
    try:
        # Never block on what is opened (a FIFO), and judge the file that was opened, not the path.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise _unreadable(path, name, exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PlanError(f"not a regular file ({file_kind(st.st_mode)})", name)
        if st.st_size > max_bytes:
            raise _too_big(name, st.st_size, max_bytes)
        data = read_upto(functools.partial(os.read, fd), max_bytes, st.st_size)
    except OSError as exc:
        raise _unreadable(path, name, exc) from None
    finally:
        os.close(fd)
    return load_yaml_text(data, name, max_bytes=max_bytes)


def _unreadable(path: str | os.PathLike[str], name: str, exc: OSError) -> PlanError:
    if exc.errno == errno.ELOOP:
        return PlanError("cannot read the plan file: a symlink loop", name)
    if exc.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
        try:
            return PlanError(f"not a regular file ({file_kind(os.stat(path).st_mode)})", name)
        except OSError:
            pass
    return PlanError(f"cannot read the plan file: {exc.strerror or exc}", name, 1, 1)


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, for messages ("a FIFO")."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def load_yaml_text(data: bytes | str, display: str, *, max_bytes: int = MAX_PLAN_BYTES) -> YamlDoc:
    """Load one YAML document safely, with the line and column of every node.

    Standard YAML 1.1 scalars keep their resolved types (``no`` is ``False``,
    ``1.10`` is ``1.1``, ``2024-01-01`` a :class:`datetime.date`); keys are
    left as constructed.

    :param data: the file's bytes (UTF-8, a BOM is allowed), or its text.
    :param display: the path to print in messages.
    :param max_bytes: refuse more bytes than this.
    :return: the document; its ``data`` is always a ``dict``.
    :raises PlanError: located at ``display:line:col`` (1-based) for a file
        that is too big, not UTF-8, not valid YAML, holds a duplicate or
        unhashable key, nests deeper than :data:`MAX_DEPTH`, uses more than
        :data:`MAX_ALIASES` aliases or expands past :data:`MAX_NODES` nodes,
        holds a control character, a scalar its tag cannot read, more than one
        document, or nothing, or whose top level is not a mapping.
    """
    if isinstance(data, str):
        if 4 * len(data) > max_bytes:  # a character is at most 4 bytes: only count when it matters
            size = len(data.encode("utf-8", "surrogatepass"))
            if size > max_bytes:
                raise _too_big(display, size, max_bytes)
        text = data[1:] if data.startswith("\ufeff") else data
    else:
        if len(data) > max_bytes:
            raise _too_big(display, len(data), max_bytes)
        text = _decode(data, display)
    try:
        doc = _load(text, display)
    except PlanError:
        raise
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, display, text) from None
    except ReaderError as exc:
        raise _reader_error(exc, text, display) from None
    except yaml.YAMLError as exc:
        raise PlanError(f"invalid YAML: {_first_line(exc)}", display, 1, 1) from None
    except UnicodeEncodeError as exc:  # a str holding a lone surrogate
        line, col = _line_col(text, exc.start)
        raise PlanError(
            f"invalid character U+{ord(text[exc.start]):04X} (a lone surrogate)", display, line, col
        ) from None
    except RecursionError:
        raise PlanError(f"nesting deeper than {MAX_DEPTH} levels", display, 1, 1) from None
    if not isinstance(data, str):
        doc.sha256 = hashlib.sha256(data).hexdigest()
    return doc


def _load(text: str, display: str) -> YamlDoc:
    doc = _load_tree(text, display)
    return doc if doc is not None else _load_careful(text, display)


def _load_careful(text: str, display: str) -> YamlDoc:
    """Any YAML: composed into nodes, walked within the limits, constructed; every problem located."""
    if text.count("*") > MAX_ALIASES or _may_nest_deep(text):
        _scan_events(text, display)
    loader = _PlanLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except RecursionError:  # only with the pure-Python composer
            _scan_events(text, display)
            raise
        if root is None:
            raise PlanError("empty plan file", display, 1, 1)
        doc = YamlDoc(display, None, text=text)
        try:
            if isinstance(root, MappingNode):
                _walk(loader, root, doc, check_control="\\" in text, shared="*" in text)
            elif isinstance(root, SequenceNode):
                raise _not_a_mapping("a list", root, display)
            doc.data = loader.construct_document(root)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise _bad_scalar(root, exc, display) from None
    finally:
        loader.dispose()
    if not isinstance(doc.data, dict):
        if doc.data is None:
            raise PlanError("empty plan file", display, 1, 1)
        raise _not_a_mapping(_kind(doc.data), root, display)
    return doc


class _NotATree(Exception):
    """The text is more than a plain tree: the careful path loads it (and reports what is wrong)."""


_MAP_TAG = Resolver.DEFAULT_MAPPING_TAG
_SEQ_TAG = Resolver.DEFAULT_SEQUENCE_TAG
_SCALARS = SafeConstructor()  # constructs the scalars a plain tree holds (ints, floats, booleans, dates)
#: plain scalar text -> its value, for the non-string ones (all immutable); bounded.
_PLAIN_VALUES: dict[str, Any] = {}


def _load_tree(text: str, display: str) -> YamlDoc | None:
    """The fast path: one document, a mapping, of plain and quoted scalars in nested collections.

    Built straight from libyaml's events (no node tree, no constructor
    machinery), marks included. Anything more (an anchor, an alias, a merge,
    an explicit tag, a duplicate or collection key, a control character, a
    scalar its tag cannot read, more nodes or depth than allowed, a second
    document, invalid YAML) returns ``None``: the careful path below loads
    it, with the located error it deserves. So both paths agree on every
    file the fast one accepts, and only the careful one ever raises.
    """
    if not _WITH_LIBYAML:
        return None
    loader = _PlanLoader(text)
    try:
        return _build(loader, text, display)
    except (_NotATree, yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError, RecursionError):
        return None
    finally:
        loader.dispose()


def _build(loader: Any, text: str, display: str) -> YamlDoc:
    get = loader.get_event
    resolve = loader.resolve
    if get().__class__ is not StreamStartEvent or get().__class__ is not DocumentStartEvent:
        raise _NotATree
    event = get()
    if event.__class__ is not MappingStartEvent or event.anchor is not None:
        raise _NotATree
    if event.tag is not None and event.tag != "!":
        raise _NotATree
    values: dict[tuple[Any, ...], tuple[int, int]] = {}
    keys: dict[tuple[Any, ...], tuple[int, int]] = {}
    numbers: list[tuple[tuple[Any, ...], Any]] = []
    mark = event.start_mark
    assert mark is not None  # the parser marks every event it makes
    values[()] = (mark.line + 1, mark.column + 1)
    root: dict[Any, Any] = {}
    # The open collections, innermost last: (container, its path, a mapping?)
    stack: list[tuple[Any, tuple[Any, ...], bool]] = []
    container: Any = root
    path: tuple[Any, ...] = ()
    is_map = True
    key: Any = _NO_KEY  # in a mapping: the key waiting for its value
    count = 1
    scalar_event, map_start, seq_start = ScalarEvent, MappingStartEvent, SequenceStartEvent
    map_end, seq_end = MappingEndEvent, SequenceEndEvent
    str_tag, no_key, control, plain_values = _STR, _NO_KEY, _CONTROL, _PLAIN_VALUES
    tags = _PlanLoader._tags
    child: tuple[Any, ...] = ()
    while True:
        event = get()
        kind = event.__class__
        if kind is scalar_event:
            if event.anchor is not None or event.tag is not None:
                raise _NotATree
            value = event.value
            if event.implicit[0]:  # plain: its text decides its type
                tag = tags.get(value)
                if tag is None:
                    tag = resolve(ScalarNode, value, (True, False))
                if tag is not str_tag:
                    try:
                        value = plain_values[value]
                    except KeyError:
                        if tag == _VALUE or tag == _MERGE:
                            raise _NotATree from None
                        raw = value
                        value = _SCALARS.construct_object(ScalarNode(tag, raw))
                        if len(plain_values) < _TAG_CACHE_SIZE:
                            plain_values[raw] = value
            else:  # quoted or a block: a string
                tag = str_tag
                if event.style == '"' and control.search(value):
                    raise _NotATree
            count += 1
            mark = event.start_mark
            if is_map:
                if key is no_key:
                    key = intern(value) if tag is str_tag else value  # keys repeat: one object each
                    child = path + (key,)
                    at = (mark.line + 1, mark.column + 1)
                    if keys.setdefault(child, at) is not at:
                        raise _NotATree  # a duplicate key
                    continue
                if tag is str_tag and len(value) <= _INTERNED:
                    value = intern(value)  # paths and names repeat through a plan: one object each
                container[key] = value
                key = no_key
            else:
                if tag is str_tag and len(value) <= _INTERNED:
                    value = intern(value)
                child = path + (len(container),)
                container.append(value)
            values[child] = (mark.line + 1, mark.column + 1)
            if tag is not str_tag and value.__class__ is not bool and value is not None:
                numbers.append((child, value))
        elif kind is map_start or kind is seq_start:
            if event.anchor is not None or (event.tag is not None and event.tag != "!"):
                raise _NotATree
            if is_map and key is no_key:
                raise _NotATree  # a collection as a key
            count += 1
            if len(stack) >= MAX_DEPTH - 1 or count > MAX_NODES:
                raise _NotATree
            new: Any = {} if kind is map_start else []
            if is_map:
                container[key] = new
                key = no_key
            else:
                child = path + (len(container),)
                container.append(new)
            mark = event.start_mark
            values[child] = (mark.line + 1, mark.column + 1)
            stack.append((container, path, is_map))
            container, path, is_map = new, child, kind is map_start
        elif kind is map_end or kind is seq_end:
            if not stack:
                break
            container, path, is_map = stack.pop()
        else:  # an alias, or anything else
            raise _NotATree
        if count > MAX_NODES:
            raise _NotATree
    if get().__class__ is not DocumentEndEvent or get().__class__ is not StreamEndEvent:
        raise _NotATree  # a second document
    return YamlDoc(display, root, values, keys, text=text, numbers=numbers)


_NO_KEY = object()
_INTERNED = 80  # strings up to this long are interned


def _may_nest_deep(text: str) -> bool:
    """Whether composing ``text`` might recurse deeper than is safe (cheap, conservative).

    Block collections nested in one another start at strictly increasing
    columns (an indentless ``- `` list under a key shares its key's column),
    and a block collection starts at or before the first character of its
    line that is not a space, tab, ``-``, ``?`` or ``:``. Flow collections
    need a ``[`` or ``{`` each (a single-pair mapping inside ``[...]`` one
    more). So with no line led by :data:`_LEAD_LIMIT` such characters, the
    depth is at most ``2 * (_LEAD_LIMIT + 1) + 2 * count('[') + count('{')``.
    """
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return True  # a lone CR is a line break to YAML, not to the regex
    if "\x85" in text or "\u2028" in text or "\u2029" in text:
        return True
    if _DEEP_LEAD.search(text) or _DEEP_FIRST_LEAD.match(text):
        return True
    return 2 * (_LEAD_LIMIT + 1) + 2 * text.count("[") + text.count("{") > _COMPOSE_SAFE_DEPTH


def _scan_events(text: str, display: str) -> None:
    """Bound depth, aliases and documents on the event stream, before anything recursive runs.

    libyaml's composer recurses in C: ``[[[[...`` nested 100,000 deep crashes
    the interpreter instead of raising. Its parser does not recurse.
    """
    loader = _PlanLoader(text)
    try:
        get_event = loader.get_event
        depth = aliases = documents = 0
        while True:
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent:
                continue
            if kind is MappingStartEvent or kind is SequenceStartEvent:
                depth += 1
                if depth > MAX_DEPTH:
                    raise _at(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels", display)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1
            elif kind is AliasEvent:
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _at(event.start_mark, f"more than {MAX_ALIASES} aliases", display)
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _at(event.start_mark, _SECOND_DOCUMENT, display)
            elif kind is StreamEndEvent:
                return
    finally:
        loader.dispose()


_SECOND_DOCUMENT = "a plan file holds one YAML document; found a second one"


def _walk(loader: Any, root: MappingNode, doc: YamlDoc, *, check_control: bool, shared: bool) -> None:
    """Record every node's marks, once; refuse what construction would accept but a plan must not.

    Checked here, before anything is constructed: duplicate and unhashable
    keys, control characters (only double-quoted escapes can make them: the
    reader refuses raw ones), nesting depth and node count *through aliases*
    (an aliased collection's size and height are memoized, so a billion laughs
    costs its text, not its expansion; merges are bounded by the same count),
    and recursive aliases. Scalars are handled in their parent's loop; only
    collections go on the stack.

    :param check_control: look for control characters (the text has a ``\\``).
    :param shared: nodes may be shared (the text has a ``*``): track sizes
        and heights. Without aliases the tree is a tree and depth is enough.
    """
    display = doc.path
    values = doc.value_marks
    keys = doc.key_marks
    construct = loader.construct_object
    # id(collection) -> (expanded size, height), or None while it is being walked
    memo: dict[int, tuple[int, int] | None] = {}
    count = deepest = 0
    aliased = False
    mark = root.start_mark
    values[()] = (mark.line + 1, mark.column + 1)
    stack: list[tuple[Any, Any, Any]] = [(root, (), 1)]
    pop, push = stack.pop, stack.append
    scalar, sequence, str_tag, value_tag, merge_tag = ScalarNode, SequenceNode, _STR, _VALUE, _MERGE
    while stack:
        node, path, depth = pop()
        if node is None:  # done with a collection: (None, node, (count before, deepest before, depth))
            start, saved, level = depth
            memo[id(path)] = (count - start, deepest - level + 1)
            if count > MAX_NODES:
                what = f"alias expansion exceeds {MAX_NODES} nodes" if aliased else f"more than {MAX_NODES} nodes"
                raise _at(path.start_mark, what, display)
            if saved > deepest:
                deepest = saved
            continue
        if shared:
            nid = id(node)
            if nid in memo:  # met before: through an alias
                done = memo[nid]
                if done is None:
                    raise _at(node.start_mark, "recursive alias: this node contains an alias to itself", display)
                aliased = True
                count += done[0]
                reach = depth - 1 + done[1]
                if reach > MAX_DEPTH:
                    message = f"nesting deeper than {MAX_DEPTH} levels once aliases are expanded"
                    if path is None:  # inside a merge: no marks recorded there
                        raise _at(node.start_mark, message, display)
                    line, col = doc.locate(path[:-1])  # where the alias is used, near enough
                    raise PlanError(message, display, line, col)
                if reach > deepest:
                    deepest = reach
                continue
            if depth > MAX_DEPTH:
                raise _at(node.start_mark, f"nesting deeper than {MAX_DEPTH} levels", display)
            memo[nid] = None
            push((None, node, (count, deepest, depth)))
            deepest = depth
        elif depth > MAX_DEPTH:
            raise _at(node.start_mark, f"nesting deeper than {MAX_DEPTH} levels", display)
        child_depth = depth + 1
        items = node.value
        count += 1  # the node; scalar items, keys and values are counted below
        children: list[tuple[Any, Any, int]] = []
        if node.__class__ is sequence:
            i = 0
            for item in items:
                if path is not None:
                    child = path + (i,)
                    mark = item.start_mark
                    values[child] = (mark.line + 1, mark.column + 1)
                else:
                    child = None
                i += 1
                if item.__class__ is scalar:
                    count += 1
                    if check_control and item.style == '"':
                        _refuse_control(item, display)
                else:
                    children.append((item, child, child_depth))
        else:  # a mapping
            count += len(items)
            seen: dict[Any, int] | None = {} if path is None else None
            merges: list[Node] = []
            for key_node, value_node in items:
                if key_node.__class__ is not scalar:
                    raise _unhashable_key(node, key_node, display)
                tag = key_node.tag
                if tag == str_tag or tag == value_tag:
                    key = key_node.value
                elif tag == merge_tag:
                    merges.append(value_node)
                    if value_node.__class__ is scalar:
                        count += 1  # construction will refuse it
                    else:
                        children.append((value_node, None, child_depth))
                    continue
                else:
                    key = construct(key_node)
                if check_control and key_node.style == '"':
                    _refuse_control(key_node, display)
                key_mark = key_node.start_mark
                if seen is None:  # the key table tells duplicates
                    child = path + (key,)
                    key_at = (key_mark.line + 1, key_mark.column + 1)
                    first = keys.setdefault(child, key_at)
                    if first is not key_at:
                        raise _duplicate(key, first[0], key_mark, display)
                    mark = value_node.start_mark
                    values[child] = (mark.line + 1, mark.column + 1)
                else:
                    child = None
                    seen_line = seen.get(key)
                    if seen_line is not None:
                        raise _duplicate(key, seen_line, key_mark, display)
                    seen[key] = key_mark.line + 1
                if value_node.__class__ is scalar:
                    count += 1
                    if check_control and value_node.style == '"':
                        _refuse_control(value_node, display)
                else:
                    children.append((value_node, child, child_depth))
            if merges and path is not None:
                _merge_marks(construct, merges, path, values, keys)
        if count > MAX_NODES:
            raise _at(node.start_mark, f"more than {MAX_NODES} nodes", display)
        if children:
            children.reverse()
            stack.extend(children)


def _unhashable_key(mapping: Node, key: Node, display: str) -> PlanError:
    # An alias carries no mark of its own: its node's is where the anchor is.
    mark = key.start_mark if key.start_mark.index >= mapping.start_mark.index else mapping.start_mark
    return _at(mark, "a mapping key must be a plain value, not a list or mapping", display)


def _duplicate(key: Any, first_line: int, mark: Any, display: str) -> PlanError:
    return _at(mark, f"duplicate key {key!r} (first defined at line {first_line})", display)


def _merge_marks(
    construct: Any,
    merges: list[Node],
    path: tuple[Any, ...],
    values: dict[tuple[Any, ...], tuple[int, int]],
    keys: dict[tuple[Any, ...], tuple[int, int]],
) -> None:
    """Give the keys a ``<<:`` merges in the marks of where they were written.

    Explicit keys win over merged ones, and earlier merges over later ones,
    as in the constructed mapping. Only the merged mappings' own entries are
    recorded; deeper paths fall back to them.
    """
    sources: list[Node] = []
    for node in merges:
        if isinstance(node, MappingNode):
            sources.append(node)
        elif isinstance(node, SequenceNode):
            sources.extend(n for n in node.value if isinstance(n, MappingNode))
    for source in sources:
        for key_node, value_node in source.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue
            key = key_node.value if key_node.tag in (_STR, _VALUE) else construct(key_node)
            child = (*path, key)
            if child not in keys:
                mark = key_node.start_mark
                keys[child] = (mark.line + 1, mark.column + 1)
                mark = value_node.start_mark
                values[child] = (mark.line + 1, mark.column + 1)


def _refuse_control(node: ScalarNode, display: str) -> None:
    found = _CONTROL.search(node.value)
    if found is not None:
        raise _at(node.start_mark, f"control character U+{ord(found.group()):04X} in value", display)


def _at(mark: Any, message: str, display: str) -> PlanError:
    """A PlanError at a 0-based yaml mark."""
    return PlanError(message, display, mark.line + 1, mark.column + 1)


def _too_big(display: str, size: int, limit: int) -> PlanError:
    return PlanError(
        f"plan file is {size} bytes, over the {limit}-byte limit (raise it with --max-plan-bytes)", display, 1, 1
    )


def _not_a_mapping(kind: str, root: Node, display: str) -> PlanError:
    return _at(root.start_mark, f"a plan file must be a mapping of keys (plan:, tasks:, ...), found {kind}", display)


def _decode(data: bytes, display: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        line, col = _line_col(prefix, len(prefix))
        raise PlanError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", display, line, col) from None


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]``, counting line breaks as YAML does."""
    line, start = 1, 0
    for found in _BREAK.finditer(text, 0, index):
        line, start = line + 1, found.end()
    return line, index - start + 1


def _yaml_error(exc: yaml.MarkedYAMLError, display: str, text: str) -> PlanError:
    mark = exc.problem_mark or exc.context_mark
    before, char = _around(text, mark)
    if exc.problem == "but found another document":  # get_single_node's
        message = _SECOND_DOCUMENT
    elif "cannot start any token" in (exc.problem or "") and mark is not None and char and char in "`@":
        # The usual cause: - `pytest` passes, a sentence criterion left unquoted.
        message = f"a plain value cannot start with {char!r}; quote it"
        rest = _BREAK.split(text)[mark.line][mark.column :].split(" #")[0].strip()
        if "[" not in before and "{" not in before and rest.isprintable() and len(rest) <= 80:
            message += f": {_quoted(rest)}"
    else:
        message = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            message += f" ({exc.context})"
        if (exc.problem or "").startswith("mapping values are not allowed"):
            if _KEY_ONLY.match(before):
                # Only indentation and a key-like word before the ':': a key
                # indented deeper than the keys above it continues their value.
                message += "; is this key indented more than the keys above it?"
            else:
                # `run: echo '{"a": 1}'`: a plain value with ': ' in it.
                message += "; a value that contains ': ' must be quoted or written as a block (|)"
    if mark is None:
        return PlanError(message, display, 1, 1)
    return _at(mark, message, display)


def _quoted(value: str) -> str:
    """``value`` as a single-quoted YAML scalar."""
    return "'" + value.replace("'", "''") + "'"


def _around(text: str, mark: Any) -> tuple[str, str]:
    """The text of ``mark``'s line before it, and the character at it ('' if none)."""
    if mark is None:
        return "", ""
    lines = _BREAK.split(text)
    if mark.line >= len(lines):
        return "", ""
    line = lines[mark.line]
    return line[: mark.column], line[mark.column : mark.column + 1]


def _reader_error(exc: ReaderError, text: str, display: str) -> PlanError:
    """A character YAML does not allow in a stream."""
    position = exc.position
    if _WITH_LIBYAML:  # libyaml reports a byte offset into the UTF-8 text
        position = len(text.encode("utf-8", "surrogatepass")[:position].decode("utf-8", "replace"))
    line, col = _line_col(text, position)
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    if _CONTROL.match(chr(code)):
        message = f"control character U+{code:04X} is not allowed in a YAML file"
    else:
        message = f"character U+{code:04X} is not allowed in a YAML file"
    return PlanError(message, display, line, col)


_TAG_NAMES = {
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
}


def _bad_scalar(root: Node, exc: Exception, display: str) -> PlanError:
    """Find the scalar PyYAML could not construct (it raised ``exc`` without a mark)."""
    probe = SafeConstructor()
    stack: list[Node] = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            try:
                probe.construct_object(node)
            except (ValueError, TypeError, AttributeError, OverflowError) as found:
                what = _TAG_NAMES.get(node.tag, node.tag)
                text = node.value
                shown = repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"
                message = f"cannot read {shown} as {what}"
                detail = str(found) if isinstance(found, ValueError) else ""
                if "integer string conversion" in detail:  # CPython's int/str digit limit
                    detail = "too many digits"
                if detail:
                    message += f": {detail}"
                if not node.style and Resolver().resolve(ScalarNode, node.value, (True, False)) == node.tag:
                    message += "; quote it if it is text"  # read as this type only because it is unquoted
                return _at(node.start_mark, message, display)
            except yaml.YAMLError:
                pass
        elif isinstance(node, MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
    raise exc


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, set):
        return "a set"
    return f"a {type(value).__name__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
