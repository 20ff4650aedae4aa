"""planrun.loader: YAML -> data with marks, and every way a file can be refused."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from yaml.constructor import SafeConstructor

from planrun import loader
from planrun.errors import PlanError
from planrun.loader import YamlDoc, load_yaml, load_yaml_text

PLAN = """\
# a comment first
plan: Demo
tasks:
  - id: a
    name: A
    criteria:
      - file_exists: x
      - {data: 1}
"""

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)


def write(tmp_path: Path, content: str | bytes, name: str = "p.plan.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def load_error(tmp_path: Path, content: str | bytes, **kwargs: int) -> tuple[Path, PlanError]:
    path = write(tmp_path, content)
    with pytest.raises(PlanError) as excinfo:
        load_yaml(path, **kwargs)
    return path, excinfo.value


@pytest.fixture(params=["tree", "events"])
def both_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the depth checked on the composed tree, and again by the event pre-pass."""
    if request.param == "events":
        monkeypatch.setattr(loader, "_COMPOSE_SAFE_DEPTH", 0)
    return str(request.param)


# valid files and marks


def test_valid_plan_has_data_and_marks(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, PLAN))
    assert doc.path == str(tmp_path / "p.plan.yaml")
    assert doc.data == yaml.load(PLAN, Loader=yaml.CSafeLoader)
    assert doc.value_marks[()] == (2, 1)
    assert doc.value_marks[("plan",)] == (2, 7)
    assert doc.key_marks[("plan",)] == (2, 1)
    assert doc.value_marks[("tasks", 0)] == (4, 5)  # a list item: where its mapping starts
    assert doc.key_marks[("tasks", 0, "name")] == (5, 5)  # a nested key
    assert doc.value_marks[("tasks", 0, "name")] == (5, 11)
    assert doc.value_marks[("tasks", 0, "criteria", 0, "file_exists")] == (7, 22)
    assert doc.value_marks[("tasks", 0, "criteria", 1)] == (8, 9)
    assert doc.key_marks[("tasks", 0, "criteria", 1, "data")] == (8, 10)
    assert ("tasks", 0) not in doc.key_marks  # list items have no key


def test_display_path_is_used_as_given(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "plan: p\n"), display="plans/p.plan.yaml")
    assert doc.path == "plans/p.plan.yaml"
    with pytest.raises(PlanError) as excinfo:
        load_yaml(write(tmp_path, "plan: p\nplan: q\n"), display="shown.yaml")
    assert str(excinfo.value) == "shown.yaml:2:1: duplicate key 'plan' (first defined at line 1)"


def test_locate_takes_the_longest_known_prefix_and_skips_union_tags(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, PLAN))
    assert doc.locate(("tasks", 0, "function-after[check(), str]", "name")) == (5, 11)
    assert doc.locate(("tasks", 0, "criteria", "list[str]", 1, "data")) == (8, 16)
    assert doc.locate(("tasks", 0, "nope", "deeper")) == (4, 5)
    assert doc.locate(("tasks", 7)) == (4, 3)  # a block list starts at its first `-`
    assert doc.locate(("nope",)) == (2, 1)
    assert doc.locate(()) == (2, 1)
    assert doc.locate((["unhashable"], "plan")) == (2, 7)
    assert YamlDoc("x", {}).locate(("a",)) == (1, 1)


def test_locate_key_points_at_the_key_of_a_mapping_entry(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, PLAN))
    assert doc.locate_key(("tasks", 0, "name")) == (5, 5)
    assert doc.locate_key(["tasks", 0, "name"]) == (5, 5)  # type: ignore[arg-type]
    assert doc.locate_key(("tasks", 0)) == (4, 5)  # a list item: its value mark
    assert doc.locate_key(("tasks", 0, "union-tag", "name")) == (5, 11)  # not an entry: locate()


def test_error_is_a_located_plan_error(tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    doc = load_yaml(path)
    assert str(doc.error(("tasks", 0, "name"), "bad name")) == f"{path}:5:11: bad name"
    err = doc.error(("tasks", 0, "name"), "bad key", key=True)
    assert (err.path, err.line, err.col, err.message) == (str(path), 5, 5, "bad key")


def test_load_yaml_text_takes_bytes_or_str() -> None:
    assert load_yaml_text(b"plan: p\n", "x.yaml").data == {"plan": "p"}
    assert load_yaml_text("plan: \u00e9\n", "x.yaml").data == {"plan": "\u00e9"}


def test_yaml_11_scalars_keep_their_types(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "a: no\nb: 1.10\nc: 2024-01-01\nd: '1.10'\ne: 12\nf: ~\n"))
    assert doc.data == {"a": False, "b": 1.1, "c": datetime.date(2024, 1, 1), "d": "1.10", "e": 12, "f": None}
    assert type(doc.data["b"]) is float


def test_non_string_keys_are_left_as_constructed(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "1: x\nfalse: y\nnull: z\nplan: p\n"))
    assert doc.data == {1: "x", False: "y", None: "z", "plan": "p"}
    assert doc.key_marks[(1,)] == (1, 1)
    assert doc.value_marks[(False,)] == (2, 8)
    assert doc.value_marks[(None,)] == (3, 7)


def test_crlf_line_ends_count_one_line(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, b"plan: p\r\ntasks:\r\n  - id: a\r\n"))
    assert doc.value_marks[("tasks", 0, "id")] == (3, 9)


def test_a_bom_is_accepted(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, b"\xef\xbb\xbfplan: p\nid: x\n"))
    assert doc.data == {"plan": "p", "id": "x"}
    assert doc.key_marks[("plan",)] == (1, 1)


def test_merge_keys_work_and_explicit_keys_win(tmp_path: Path) -> None:
    text = "defaults: &d\n  action: create\n  file: x.py\ntask:\n  <<: *d\n  file: y.py\n"
    doc = load_yaml(write(tmp_path, text))
    assert doc.data["task"] == {"action": "create", "file": "y.py"}
    assert doc.value_marks[("task", "file")] == (6, 9)  # the explicit one
    assert doc.value_marks[("task", "action")] == (2, 11)  # merged: where it was written
    assert doc.key_marks[("task", "action")] == (2, 3)


def test_merge_of_a_list_and_nested_merges(tmp_path: Path) -> None:
    # (How PyYAML resolves a merge nested inside a merge changed in 6.0.4; that is not ours to pin.)
    text = "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc: {<<: [*a, *b], z: 3}\nd: {<<: &e {<<: {w: 9}, x: 1}}\nf: *e\n"
    doc = load_yaml(write(tmp_path, text))
    assert doc.data["c"] == {"x": 1, "y": 2, "z": 3}
    assert doc.data["d"] == doc.data["f"] == {"w": 9, "x": 1}
    assert doc.value_marks[("c", "x")] == (1, 11)  # the first merge wins


def test_aliases_below_the_limits_load(tmp_path: Path) -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * loader.MAX_ALIASES) + "]\n"
    assert load_yaml(write(tmp_path, text)).data["b"] == ["x"] * loader.MAX_ALIASES


def test_an_escaped_tab_is_not_a_control_character(tmp_path: Path) -> None:
    assert load_yaml(write(tmp_path, 'plan: "a\\tb\\nc"\n')).data == {"plan": "a\tb\nc"}


def test_constructors_registered_by_others_do_not_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SafeConstructor.yaml_constructors, "!env", lambda loader, node: "secret")
    path, err = load_error(tmp_path, "plan: !env HOME\n")
    assert str(err) == f"{path}:1:7: could not determine a constructor for the tag '!env'"


# refused files


def test_size_cap_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("read a file over the limit")

    monkeypatch.setattr(loader, "open", no_open, raising=False)
    path, err = load_error(tmp_path, "plan: " + "x" * 30 + "\n", max_bytes=10)
    assert str(err) == f"{path}:1:1: plan file is 37 bytes, over the 10-byte limit (raise it with --max-plan-bytes)"


def test_size_cap_in_load_yaml_text() -> None:
    with pytest.raises(PlanError) as excinfo:
        load_yaml_text(b"plan: 12345\n", "t.yaml", max_bytes=11)
    assert (
        str(excinfo.value)
        == "t.yaml:1:1: plan file is 12 bytes, over the 11-byte limit (raise it with --max-plan-bytes)"
    )
    with pytest.raises(PlanError, match=r"^t.yaml:1:1: plan file is 13 bytes, over the 12-byte"):
        load_yaml_text("plan: \u00e9\u00e9\u00e9\n", "t.yaml", max_bytes=12)  # counted in UTF-8 bytes
    assert load_yaml_text(b"plan: 12345\n", "t.yaml", max_bytes=12).data == {"plan": 12345}


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.plan.yaml"
    with pytest.raises(PlanError) as excinfo:
        load_yaml(missing)
    assert str(excinfo.value) == f"{missing}:1:1: cannot read the plan file: No such file or directory"


@pytest.mark.parametrize(
    ("content", "where", "byte"),
    [
        (b"plan: ok\ntasks:\n  - id: \xff\n", "3:9", "0xff"),
        (b"\xef\xbb\xbfplan: \xc3\xa9\xc3\xa9\xc0\n", "1:9", "0xc0"),  # BOM and two 2-byte characters before
        (b"plan: ok\r\nid: \xe2\x82\n", "2:5", "0xe2"),  # a truncated sequence
    ],
)
def test_invalid_utf8_is_located(tmp_path: Path, content: bytes, where: str, byte: str) -> None:
    path, err = load_error(tmp_path, content)
    assert str(err) == f"{path}:{where}: not valid UTF-8 (byte {byte})"


@pytest.mark.parametrize(
    ("text", "where", "key", "first"),
    [
        ("plan: p\nid: x\nplan: q\n", "3:1", "'plan'", 1),
        ("plan: p\ntasks:\n  - id: a\n    name: A\n    id: b\n", "5:5", "'id'", 3),
        ("tasks: [{id: a, id: b}]\n", "1:17", "'id'", 1),
        ("a: {1: x, 0x1: y}\n", "1:11", "1", 1),  # equal once constructed
        ("1: x\ntrue: y\n", "2:1", "True", 1),  # so are 1 and True
        ("a: &a {<<: {x: 1}, k: 1, k: 2}\nb: *a\n", "1:26", "'k'", 1),
    ],
)
def test_duplicate_keys(tmp_path: Path, text: str, where: str, key: str, first: int) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{where}: duplicate key {key} (first defined at line {first})"


def test_duplicate_key_inside_a_merged_mapping(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "a:\n  <<: {x: 1,\n        x: 2}\n")
    assert str(err) == f"{path}:3:9: duplicate key 'x' (first defined at line 2)"


@pytest.mark.parametrize(
    ("text", "where"),
    [("[a]: b\n", "1:1"), ("plan: p\ntasks:\n  ? {id: a}\n  : x\n", "3:5"), ("a: &k [x]\nb: {*k : 1}\n", "2:4")],
)
def test_unhashable_keys_are_located(tmp_path: Path, text: str, where: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{where}: a mapping key must be a plain value, not a list or mapping"


def test_deep_flow_nesting_is_located(tmp_path: Path, both_paths: str) -> None:
    path, err = load_error(tmp_path, "plan: " + "[" * 200 + "]" * 200 + "\n")
    assert str(err) == f"{path}:1:70: nesting deeper than 64 levels"  # the root mapping is level 1


# libyaml 0.2.5 as bundled with PyYAML >= 6.0.4 stops at 1,000 levels of flow
# nesting by itself, before planrun's own check sees the events; older builds
# leave it to planrun. Either way the error is located and nothing crashes.
_DEEP = r"(nesting deeper than 64 levels|exceeded maximum nesting depth \(while increasing flow level\))"


def test_very_deep_flow_nesting_is_located(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "[" * 100_000)
    assert re.fullmatch(rf"{re.escape(str(path))}:1:\d+: {_DEEP}", str(err)), str(err)


def test_very_deep_flow_nesting_does_not_crash_the_interpreter(tmp_path: Path) -> None:
    # libyaml's composer recurses in C and segfaults on this: run it where a crash fails the test.
    path = write(tmp_path, "plan: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code = textwrap.dedent(
        """
        import sys
        from planrun.errors import PlanError
        from planrun.loader import load_yaml
        try:
            load_yaml(sys.argv[1])
        except PlanError as exc:
            print(exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}:1:\d+: {_DEEP}\n", result.stdout), result.stdout


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("- " * 100_000 + "x\n", "1:129"),  # `- - - ...` on one line
        ("plan:\n" + "".join(" " * i + "- \n" for i in range(1, 80)), "65:65"),
        ("? " * 100_000 + "x\n", "1:129"),
    ],
)
def test_deep_block_nesting_is_located(tmp_path: Path, text: str, where: str, both_paths: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{where}: nesting deeper than 64 levels"


def test_nesting_of_exactly_the_limit_loads(tmp_path: Path, both_paths: str) -> None:
    doc = load_yaml(write(tmp_path, "a: " + "[" * 63 + "]" * 63 + "\n"))
    node = doc.data["a"]
    for _ in range(62):
        node = node[0]
    assert node == []


def test_nesting_through_aliases_counts(tmp_path: Path) -> None:
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:2:33: nesting deeper than 64 levels once aliases are expanded"


@pytest.mark.timeout(20)  # unbounded, the expansion would run for ages: a hang guard, not a speed test
def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, LAUGHS)
    # a = 10 nodes, b = 91, ... f = 597871: f's list is where the count runs out
    assert str(err) == f"{path}:6:4: alias expansion exceeds 100000 nodes"


@pytest.mark.timeout(20)
def test_merge_bomb_is_refused(tmp_path: Path) -> None:
    text = "a0: &a0 {x: 1}\n" + "".join(
        f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}, *a{i - 1}]}}\n" for i in range(1, 33)
    )
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:10:14: alias expansion exceeds 100000 nodes"


def test_node_count_without_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_NODES", 20)
    assert load_yaml(write(tmp_path, "a: [" + ", ".join("1" * 17) + "]\n")).data["a"] == [1] * 17  # 20 nodes
    path, err = load_error(tmp_path, "plan: p\nb: [" + ", ".join("1" * 17) + "]\n")
    assert str(err) == f"{path}:2:4: more than 20 nodes"


def test_too_many_aliases(tmp_path: Path) -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * (loader.MAX_ALIASES + 1)) + "]\n"
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:2:{5 + 4 * loader.MAX_ALIASES}: more than 100 aliases"


def test_recursive_alias(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "plan: p\na: &a [1, *a]\n")
    assert str(err) == f"{path}:2:4: recursive alias: this node contains an alias to itself"


def test_two_documents(tmp_path: Path, both_paths: str) -> None:
    path, err = load_error(tmp_path, "plan: p\ntasks: []\n---\nplan: q\n")
    assert str(err) == f"{path}:3:1: a plan file holds one YAML document; found a second one"


def test_explicit_end_then_a_second_document(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "plan: p\n...\n--- \nplan: q\n")
    assert str(err) == f"{path}:3:1: a plan file holds one YAML document; found a second one"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "plan: p\ntasks:\n  - id: a\n   name: bad indent\n",
            "4:4: did not find expected '-' indicator (while parsing a block collection)",
        ),
        ("plan: [a, b\n", "2:1: did not find expected ',' or ']' (while parsing a flow sequence)"),
        ("plan: *nope\n", "1:7: found undefined alias"),
        ("plan: !custom x\n", "1:7: could not determine a constructor for the tag '!custom'"),
    ],
)
def test_yaml_errors_are_located(tmp_path: Path, text: str, message: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "plan: p\nid: 2024-13-45\n",
            "2:5: cannot read '2024-13-45' as a date: month must be in 1..12; quote it if it is text",
        ),
        ("plan: !!int abc\n", "1:7: cannot read 'abc' as an integer: invalid literal for int() with base 10: 'abc'"),
        (
            "plan: p\n2024-02-30: x\n",
            "2:1: cannot read '2024-02-30' as a date: day is out of range for month; quote it if it is text",
        ),
    ],
)
def test_scalars_their_tag_cannot_read_are_located(tmp_path: Path, text: str, message: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{message}"


@pytest.mark.parametrize(
    ("text", "where", "code"),
    [
        ('plan: "bad\\x01title"\n', "1:7", "0001"),
        ('plan: p\ntasks: ["ok", "\\u007f"]\n', "2:15", "007F"),
        ('plan: p\n"k\\e": v\n', "2:1", "001B"),  # in a key
        ('plan: p\nx: [{y: "\\0"}]\n', "2:9", "0000"),
        ('plan: "a\\rb"\n', "1:7", "000D"),  # a carriage return: it rewrites a terminal line
        ('plan: p\nname: "x\\N"\n', "2:7", "0085"),  # NEL, a C1 line break
        ('plan: p\nname: "\\x9b2J"\n', "2:7", "009B"),  # C1 CSI, an escape sequence on its own
        ('plan: p\nname: "\\x80"\n', "2:7", "0080"),
        ('plan: p\nsteps: ["printf \\x0b"]\n', "2:9", "000B"),
    ],
)
def test_control_characters_from_escapes(tmp_path: Path, text: str, where: str, code: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{where}: control character U+{code} in value"


@pytest.mark.parametrize(
    "text",
    [
        "plan: p\nrun: |\n  echo one\n  echo two\n",  # newlines in a block
        "plan: p\nid: a\r\nname: b\r\n",  # CRLF line ends: the parser's, not the values'
        'plan: "tab\\there"\n',
        "plan: p\nname: x\u00a0y \u00e9\n",  # no-break space and letters past C1
    ],
)
def test_tabs_newlines_and_what_follows_c1_are_values(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ok.plan.yaml"
    path.write_bytes(text.encode("utf-8"))
    load_yaml(path)


def test_raw_control_characters(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "plan: p\nid: \u00e9a\x01b\n")
    assert str(err) == f"{path}:2:7: control character U+0001 is not allowed in a YAML file"


def test_lone_surrogate_in_text() -> None:
    with pytest.raises(PlanError) as excinfo:
        load_yaml_text("plan: p\nid: a\ud800\n", "t.yaml")
    assert str(excinfo.value) == "t.yaml:2:6: invalid character U+D800 (a lone surrogate)"


@pytest.mark.parametrize("text", ["", "# only a comment\n\n# and another\n", "~\n", "---\n", "null\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:1:1: empty plan file"


@pytest.mark.parametrize(
    ("text", "where", "kind"),
    [
        ("- plan: p\n", "1:1", "a list"),
        ("# intro\n\n  just words\n", "3:3", "a string"),
        ("42\n", "1:1", "a number"),
        ("--- !!set {a, b}\n", "1:5", "a set"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, where: str, kind: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{where}: a plan file must be a mapping of keys (plan:, tasks:, ...), found {kind}"


class _PurePlanLoader(yaml.SafeLoader):
    yaml_constructors = dict(SafeConstructor.yaml_constructors)
    yaml_multi_constructors = dict(SafeConstructor.yaml_multi_constructors)


@pytest.fixture(params=["libyaml", "python"])
def both_loaders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the loader planrun picked, and again with PyYAML's pure-Python one (other messages)."""
    if request.param == "python":
        monkeypatch.setattr(loader, "_PlanLoader", _PurePlanLoader)
    return str(request.param)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "plan: p\ncriteria:\n  - `pytest` passes\n",
            "3:5: a plain value cannot start with '`'; quote it: '`pytest` passes'",
        ),
        ("plan: `it's` here  # note\n", "1:7: a plain value cannot start with '`'; quote it: '`it''s` here'"),
        ("plan: [`x`, y]\n", "1:8: a plain value cannot start with '`'; quote it"),
        ("plan: @me\n", "1:7: a plain value cannot start with '@'; quote it: '@me'"),
    ],
)
def test_a_leading_backtick_or_at_says_quote_it(tmp_path: Path, both_loaders: str, text: str, message: str) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err) == f"{path}:{message}"


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        (
            "plan: p\ntasks:\n  - id: a\n    name: A\n      run: x\n",
            "5:10",
            "is this key indented more than the keys above it?",
        ),
        ("plan: p\n  tasks: []\n", "2:8", "is this key indented more than the keys above it?"),
        (
            'plan: p\nrun: echo {"a": 1}\n',
            "2:15",
            "a value that contains ': ' must be quoted or written as a block (|)",
        ),
        (
            "plan: a\n  long title: here\n",
            "2:13",
            "a value that contains ': ' must be quoted or written as a block (|)",
        ),
    ],
)
def test_mapping_values_hint_tells_indentation_from_quoting(
    tmp_path: Path, both_loaders: str, text: str, where: str, hint: str
) -> None:
    path, err = load_error(tmp_path, text)
    assert str(err).startswith(f"{path}:{where}: mapping values are not allowed")
    assert str(err).endswith(f"; {hint}")
