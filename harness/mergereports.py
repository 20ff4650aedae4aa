"""``planrun merge-reports -o OUT IN...``: one JUnit XML (or JSON) report from the reports of ``--shard`` runs.

Also home of the XML writer the JUnit report uses (:func:`xml_document`) and
of the order plans are reported in (:func:`plan_order_key`), so a merged
report and the report of one serial run agree byte for byte, times aside.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from planrun.config import ExitCode
from planrun.errors import UsageError

#: An XML element for :func:`xml_document`: ``(tag, attributes, text, children)``.
XmlElement = tuple[str, dict[str, str], str, list["XmlElement"]]

_REFS = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Compiled on first use: a run that writes no report pays nothing at startup."""
    return (
        # Characters XML 1.0 does not allow (its Char production): C0 controls but tab, LF and CR;
        # lone surrogates; U+FFFE and U+FFFF.
        re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"),
        re.compile("[&<>\r]"),
        re.compile('[&<>"\t\n\r]'),
    )


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold shown as a visible escape (ESC as ``\\x1b``)."""
    return _patterns()[0].sub(lambda m: _visible(m.group()), text)


def _escape_text(text: str) -> str:
    # ">" is escaped too, so "]]>" never appears; CR as a reference, or a parser reads it as LF.
    return _patterns()[1].sub(lambda m: _REFS[m.group()], xml_text(text))


def _escape_attr(text: str) -> str:
    # Tab, LF and CR as references: a parser normalises them to spaces in attribute values.
    return _patterns()[2].sub(lambda m: _REFS[m.group()], xml_text(text))


def xml_document(root: XmlElement) -> str:
    """A complete XML 1.0 document (UTF-8 declaration, one element per line) that any strict parser reads.

    Whatever the strings hold, the document is well formed: characters XML
    cannot carry become visible escapes (:func:`xml_text`), ``&``, ``<``,
    ``>`` and CR become references in text, and quotes, tabs and line breaks
    too in attribute values, so a parser gives back exactly what was
    written. Elements have either text or children (no mixed content).
    """
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    # An explicit stack: nesting never costs Python's recursion limit.
    stack: list[tuple[XmlElement, int, bool]] = [(root, 0, False)]
    while stack:
        (tag, attrs, text, children), depth, closing = stack.pop()
        pad = " " * depth
        if closing:
            out.append(f"{pad}</{tag}>\n")
            continue
        head = pad + "<" + tag + "".join(f' {k}="{_escape_attr(v)}"' for k, v in attrs.items())
        if children:
            out.append(head + ">\n")
            stack.append(((tag, attrs, text, children), depth, True))
            stack.extend((child, depth + 1, False) for child in reversed(children))
        elif text:
            out.append(f"{head}>{_escape_text(text)}</{tag}>\n")
        else:
            out.append(head + "/>\n")
    return "".join(out)


def plan_order_key(display: str) -> tuple[tuple[int, str], ...]:
    """Where a plan path comes in a serial run over a folder (``planrun plans/``).

    The session walks folders top-down, sorted by name, listing a folder's
    plan files before descending into its subfolders: ``b.plan.yaml`` comes
    before ``a/x.plan.yaml``. Sorting by this key gives that order.
    """
    parts = display.split("/")
    return (*((1, p) for p in parts[:-1]), (0, parts[-1]))


# -- merging ---------------------------------------------------------------

USAGE = "usage: planrun merge-reports -o OUT INPUT [INPUT ...]"

HELP = f"""{USAGE}

Merge the JUnit XML reports (--junitxml) of --shard runs into one, as one run
of the whole suite would have written it: test suites in the order of a serial
run, totals recomputed. If every input is a JSON report (--json), the output is
one JSON report. The same plan in two inputs is an error.

options:
  -o, --output OUT  the merged report (written atomically)
  -h, --help        show this help and exit"""


class MergeError(Exception):
    """An input that cannot be merged: one line for the user (exit 4)."""


def _parse_args(args: list[str]) -> tuple[str, list[str]] | int:
    output: str | None = None
    inputs: list[str] = []
    i = 0
    only_inputs = False
    while i < len(args):
        arg = args[i]
        if only_inputs or not arg.startswith("-") or arg == "-":
            inputs.append(arg)
        elif arg == "--":
            only_inputs = True
        elif arg in ("-h", "--help"):
            print(HELP)
            return 0
        elif arg in ("-o", "--output"):
            if i + 1 >= len(args):
                raise MergeError(f"{arg} needs a value: the merged report's path")
            output = args[i + 1]
            i += 1
        elif arg.startswith("--output="):
            output = arg.partition("=")[2]
        elif arg.startswith("-o") and len(arg) > 2:
            output = arg[2:]
        else:
            raise MergeError(f"unrecognized argument: {arg}")
        i += 1
    if not output:
        raise MergeError("the merged report's path is missing (-o OUT)")
    if not inputs:
        raise MergeError("no reports to merge")
    return output, inputs


def _shown(path: str) -> str:
    from planrun.reports import printable

    return printable(path)


def _read(path: str) -> bytes:
    """The bytes of an input report: opened first, then checked to be a regular file (never a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise MergeError(f"{_shown(path)}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise MergeError(f"{_shown(path)}: is a directory, not a report")
        if not stat.S_ISREG(st.st_mode):
            raise MergeError(f"{_shown(path)}: not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise MergeError(f"{_shown(path)}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _kind(data: bytes) -> str:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if head == b"{" else "xml"


# -- JUnit ------------------------------------------------------------------

_COUNTS = ("tests", "failures", "errors", "skipped")


_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"


def _element(node: Any) -> XmlElement:
    """A parsed ElementTree element as an :data:`XmlElement` (whitespace between elements dropped).

    ElementTree names a namespaced element or attribute ``{uri}local``; it goes
    back out as ``nsN:local`` with ``xmlns:nsN="uri"`` declared on the element
    that uses it (``xml:`` names as they are), so what is written is what was read.
    """
    prefixes: dict[str, str] = {}

    def qualified(name: str, declared: dict[str, str]) -> str:
        if not name.startswith("{"):
            return name
        uri, _, local = name[1:].partition("}")
        if uri == _XML_NAMESPACE:
            return f"xml:{local}"
        prefix = prefixes.setdefault(uri, f"ns{len(prefixes)}")
        declared[f"xmlns:{prefix}"] = uri
        return f"{prefix}:{local}"

    converted: dict[int, XmlElement] = {}
    order = list(node.iter())
    for el in reversed(order):  # children before parents, without recursion
        children = [converted.pop(id(c)) for c in el]
        text = el.text or ""
        if children and not text.strip():
            text = ""
        declared: dict[str, str] = {}
        tag = qualified(el.tag, declared)
        attrs = {qualified(k, declared): v for k, v in el.attrib.items()}
        converted[id(el)] = (tag, {**attrs, **declared}, text, children)
    return converted[id(node)]


def _parse_junit(path: str, data: bytes) -> list[XmlElement]:
    import xml.etree.ElementTree as ET

    # No entity expansion from an input, ever: a DTD is refused before parsing. Only UTF-8 is read
    # (what planrun writes), so the check sees the text exactly as the parser will.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MergeError(f"{_shown(path)}: not a JUnit XML report (not UTF-8 at byte {exc.start})") from None
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise MergeError(f"{_shown(path)}: not a JUnit XML report (it declares a DTD)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise MergeError(f"{_shown(path)}: not a JUnit XML report: {exc}") from None
    if root.tag != "testsuites":
        raise MergeError(f"{_shown(path)}: not a JUnit XML report (the root element is <{_shown(root.tag)}>)")
    suites = []
    for child in root:
        if child.tag != "testsuite":
            raise MergeError(f"{_shown(path)}: not a JUnit XML report (<{_shown(child.tag)}> inside <testsuites>)")
        if not child.get("name"):
            raise MergeError(f"{_shown(path)}: a <testsuite> without a name")
        for key in _COUNTS:
            value = child.get(key, "0")
            if not value.isdigit():
                raise MergeError(f"{_shown(path)}: testsuite {_shown(child.get('name', ''))}: {key}={value!r}")
        suites.append(_element(child))
    return suites


def _time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def merge_junit(inputs: list[tuple[str, bytes]]) -> str:
    """One JUnit document from several: suites in serial-run order, totals recomputed."""
    seen: dict[str, str] = {}
    suites: list[XmlElement] = []
    for path, data in inputs:
        for suite in _parse_junit(path, data):
            name = suite[1]["name"]
            if name in seen:
                raise MergeError(
                    f"plan {_shown(name)} is in two reports: {_shown(seen[name])} and {_shown(path)}"
                    " (merge the reports of disjoint shards)"
                )
            seen[name] = path
            suites.append(suite)
    suites.sort(key=lambda s: plan_order_key(s[1]["name"]))
    return xml_document(junit_root(suites, sum(_time(s[1].get("time", "0")) for s in suites)))


def junit_root(suites: list[XmlElement], duration: float) -> XmlElement:
    """The ``<testsuites>`` element over ``suites``, with their totals."""
    totals = {key: sum(int(s[1].get(key, "0")) for s in suites) for key in _COUNTS}
    attrs = {"name": "planrun", **{k: str(v) for k, v in totals.items()}, "time": f"{duration:.3f}"}
    return ("testsuites", attrs, "", suites)


# -- JSON -------------------------------------------------------------------

JSON_FORMAT = "planrun-report"
JSON_VERSION = 1
OUTCOMES = ("passed", "failed", "error", "blocked", "skipped", "interrupted")


def json_counts(plans: list[dict[str, Any]], deselected: int, collection_errors: int) -> dict[str, int]:
    """The ``counts`` object of a JSON report: items per outcome, deselected items, collection errors."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for plan in plans:
        for item in plan["items"]:
            counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
    counts["deselected"] = deselected
    counts["collection_errors"] = collection_errors
    return counts


def json_exitstatus(statuses: list[int], counts: dict[str, int]) -> int:
    """The exit status one run of the whole suite would have had (pytest's codes)."""
    for worst in (3, 4):
        if worst in statuses:
            return worst
    if counts["collection_errors"] or 2 in statuses:
        return 2
    if counts["failed"] or counts["error"] or counts["blocked"]:
        return 1
    if not any(counts[o] for o in OUTCOMES):
        return 5
    return 0


def _parse_json(path: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MergeError(f"{_shown(path)}: not a planrun JSON report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise MergeError(f'{_shown(path)}: not a planrun JSON report (no "format": "{JSON_FORMAT}")')
    if doc.get("version") != JSON_VERSION:
        raise MergeError(
            f"{_shown(path)}: JSON report version {_shown(repr(doc.get('version')))}"
            f" (this planrun merges version {JSON_VERSION})"
        )
    for key, kind in (("plans", list), ("collection_errors", list), ("warnings", list), ("counts", dict)):
        if not isinstance(doc.get(key), kind):
            raise MergeError(f"{_shown(path)}: not a planrun JSON report ({key!r} is not a {kind.__name__})")
    for plan in doc["plans"]:
        if not (isinstance(plan, dict) and isinstance(plan.get("path"), str) and isinstance(plan.get("items"), list)):
            raise MergeError(f"{_shown(path)}: not a planrun JSON report (a plan without a path or items)")
        for item in plan["items"]:
            if not isinstance(item, dict) or item.get("outcome") not in OUTCOMES:
                raise MergeError(f"{_shown(path)}: not a planrun JSON report (an item without a known outcome)")
            if not isinstance(item.get("warnings", []), list):
                raise MergeError(f"{_shown(path)}: not a planrun JSON report (an item's warnings are not a list)")
    return doc


def merge_json(inputs: list[tuple[str, bytes]]) -> str:
    """One JSON report from several, with the rules of :func:`merge_junit`."""
    docs = [(path, _parse_json(path, data)) for path, data in inputs]
    seen: dict[str, str] = {}
    plans: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for path, doc in docs:
        for plan in doc["plans"]:
            if plan["path"] in seen:
                raise MergeError(
                    f"plan {_shown(plan['path'])} is in two reports: {_shown(seen[plan['path']])} and {_shown(path)}"
                    " (merge the reports of disjoint shards)"
                )
            seen[plan["path"]] = path
            plans.append(plan)
        errors.extend(doc["collection_errors"])
    plans.sort(key=lambda p: plan_order_key(p["path"]))
    errors.sort(key=lambda e: (plan_order_key(str(e.get("file") or "")), e.get("line") or 0, e.get("col") or 0))
    first = docs[0][1]
    # A report's warnings are the run's own, then its items' in order: the run's merge (once each), then
    # the items' in the merged order.
    warnings: list[str] = []
    for _, doc in docs:
        own = len(doc["warnings"]) - sum(len(i.get("warnings", ())) for p in doc["plans"] for i in p["items"])
        warnings.extend(w for w in doc["warnings"][: max(own, 0)] if w not in warnings)
    warnings.extend(w for p in plans for i in p["items"] for w in i.get("warnings", ()))
    deselected = sum(int(doc["counts"].get("deselected", 0)) for _, doc in docs)
    counts = json_counts(plans, deselected, len(errors))
    statuses = [int(doc.get("exitstatus", 0)) for _, doc in docs]
    merged = dict(first)
    merged.update(
        started=min(str(doc.get("started", "")) for _, doc in docs),
        duration=round(sum(float(doc.get("duration", 0.0)) for _, doc in docs), 6),
        exitstatus=json_exitstatus(statuses, counts),
        counts=counts,
        warnings=warnings,
        collection_errors=errors,
        plans=plans,
    )
    return json_dumps(merged)


def json_dumps(doc: dict[str, Any]) -> str:
    """How a JSON report is written: ASCII only (every string, lone surrogates included, survives exactly)."""
    return json.dumps(doc, indent=1, ensure_ascii=True) + "\n"


# -- the command --------------------------------------------------------------


def check_report_path(path: Path, label: str) -> None:
    """Raise :class:`~planrun.UsageError` ``"LABEL: reason"`` when a report cannot be written at ``path``.

    Called before anything runs, so an unwritable report path costs nothing:
    ``path`` must not be a folder, and its nearest existing ancestor must be
    a writable folder (missing folders are created when the report is
    written, atomically, with :func:`planrun.write_atomic`).
    """
    if path.is_dir():
        raise UsageError(f"{label}: is a directory")
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):  # /dev/stdout, a FIFO: written to as it is
        if not os.access(path, os.W_OK):
            raise UsageError(f"{label}: not writable")
        return
    parent = path.parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{label}: {_shown(str(parent))} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{label}: the folder {_shown(str(parent))} is not writable")


def write_report(path: Path, data: str, label: str) -> None:
    """Write a report; a failure is a one-line :class:`UsageError`.

    A file (or a new one) is replaced atomically (:func:`planrun.write_atomic`).
    What exists and is no regular file (``/dev/stdout``, a terminal, a FIFO
    such as bash's ``>(jq .)``) is written to as it is, as pytest writes its
    reports there, never replaced by a file (as root, a rename over
    ``/dev/null`` would). The reason names what is in the way (a folder
    replaced by a file since the run started) when it can, else the system's
    reason (a full disk, a FIFO nobody reads).
    """
    from planrun.atomic import write_atomic

    try:
        if not _write_in_place(path, data.encode("utf-8")):
            write_atomic(path, data)
    except OSError as exc:
        check_report_path(path, label)  # raises with the clearer reason when there is one
        reason = "no process reads it" if exc.errno == errno.ENXIO else exc.strerror or exc
        raise UsageError(f"{label}: cannot write: {reason}") from None


def _write_in_place(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` if it exists and is no regular file (nor a folder); False: it is not such.

    Opened without creating or truncating anything, then checked by what was
    opened: a regular file found there is left alone (False), for the atomic
    replace. Opened non-blocking, so a FIFO nobody reads is an error
    (``ENXIO``), not a hang; written blocking.
    """
    try:
        st = os.stat(path)
    except OSError:
        return False
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return False
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # a file now: replaced atomically after all
            return False
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return True


def main(args: list[str], plugins: list[object] | None = None) -> int:
    """``planrun merge-reports``: 0 when the merged report is written, 4 on any bad input or path."""
    try:
        parsed = _parse_args(args)
        if isinstance(parsed, int):
            return parsed
        output, paths = parsed
        out = Path(os.path.abspath(output))
        check_report_path(out, f"-o {_shown(output)}")
        inputs = [(path, _read(path)) for path in paths]
        kinds = {path: _kind(data) for path, data in inputs}
        if len(set(kinds.values())) > 1:
            xml = next(p for p, k in kinds.items() if k == "xml")
            js = next(p for p, k in kinds.items() if k == "json")
            raise MergeError(
                f"cannot merge JUnit XML ({_shown(xml)}) with JSON ({_shown(js)}): give reports of one kind"
            )
        merged = merge_json(inputs) if kinds[paths[0]] == "json" else merge_junit(inputs)
        write_report(out, merged, f"-o {_shown(output)}")
    except (MergeError, UsageError) as exc:
        print(f"ERROR: merge-reports: {exc}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    return ExitCode.OK


__all__ = [
    "XmlElement",
    "check_report_path",
    "json_counts",
    "json_dumps",
    "main",
    "merge_json",
    "merge_junit",
    "plan_order_key",
    "write_report",
    "xml_document",
    "xml_text",
]
