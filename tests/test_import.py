"""``planrun import`` and the importers plugin: Markdown plans and Taskmaster tasks.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from planrun import ExitCode, hookimpl
from planrun.loader import load_yaml
from planrun.planfile import read_plan
from planrun.testing import Planrunner

JWT_PLAN = """\
# Plan: Add JWT authentication to an Express app

## Overview
Add sign-up, login and protected routes to the Express API using JSON Web Tokens.
Tokens expire after one hour.

## Prerequisites
- [ ] package.json exists
- [ ] Node.js 18 or newer is installed

## Tasks

### Task 1: Install dependencies
**Action**: install
**File**: `package.json`
**Description**: Add jsonwebtoken and bcrypt to the project.
**Command**: `npm install jsonwebtoken bcrypt`
**Success Criteria**:
- [ ] package.json contains `jsonwebtoken`
- [ ] Dependencies are installed cleanly
**Dependencies**: None

### Task 2: Create the User model
**Action**: create
**File**: `src/models/user.ts`
**Description**: A User model with an email and a password hash.
It is stored in the existing database.
**Success Criteria**:
- src/models/user.ts exists
- Passwords are hashed
**Dependencies**: Task 1

### Task 3: Auth middleware
**Action**: create
**File**: `src/middleware/auth.ts`
**Description**: Verify the bearer token and attach the user to the request.
**Success Criteria**:
- [ ] src/middleware/auth.ts contains `jwt.verify`
- [ ] Invalid tokens are rejected with 401
**Dependencies**: Task 1, Task 2

### Task 4: Login route
**Action**: create
**Files**: `src/routes/auth.ts`
**Description**: POST /login checks the password and returns a signed token.
**Success Criteria**:
- src/routes/auth.ts exists
- The token is signed with the secret from the environment
**Dependencies**: Task 2, Task 3

### Task 5: Protect the API routes
**Action**: modify
**File**: `src/app.ts`
**Description**: Mount the auth middleware in front of /api.
**Success Criteria**:
- src/app.ts contains `authMiddleware`
**Dependencies**: Task 3

### Task 6: Tests
**Action**: test
**File**: `test/auth.test.ts`
**Description**: Tests for login and for protected routes.
**Command**: `npm test`
**Success Criteria**:
- `npm test` passes
- test/auth.test.ts exists
**Dependencies**: Task 4, Task 5

### Task 7: Document the authentication
**Action**: modify
**File**: `README.md`
**Description**: How to log in and send the token.
**Success Criteria**:
- README.md contains `Authorization: Bearer`
**Dependencies**: Task 6

## Edge Cases
- **Expired token**: the middleware answers 401 with "token expired"
  - src/middleware/auth.ts contains `TokenExpiredError`
- **Missing JWT_SECRET**: the app refuses to start
  - The app exits with a clear message

## Verification
- [ ] `npm test` passes
- [ ] A user can log in and call a protected route
"""

PROSE = [
    "Node.js 18 or newer is installed",
    "Dependencies are installed cleanly",
    "Passwords are hashed",
    "Invalid tokens are rejected with 401",
    "The token is signed with the secret from the environment",
    "The app exits with a clear message",
    "A user can log in and call a protected route",
]


def where(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, col) of the nth line holding ``needle``."""
    hits = [(no, line.index(needle) + 1) for no, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth]


def compile_errors(result: object, path: str) -> dict[str, str]:
    """criterion text -> ``path:line:col`` of its compile error, from a --co run's output."""
    import re

    found = {}
    for line in result.outstr.splitlines():  # type: ignore[attr-defined]
        m = re.match(rf"^({re.escape(path)}:\d+:\d+): criterion '(.*)' is not machine-checkable", line)
        if m:
            found[m.group(2)] = m.group(1)
    return found


def test_markdown_imports_to_yaml_that_loads_and_round_trips(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    result = planrunner.run("import", "PLAN.md", "-o", "jwt.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert "wrote jwt.plan.yaml (7 tasks)" in result.errstr
    out = planrunner.path / "jwt.plan.yaml"
    plan = read_plan(out, "jwt.plan.yaml", max_bytes=1 << 20)
    assert plan.plan == "Add JWT authentication to an Express app"
    assert [t.id for t in plan.tasks] == [
        "install-dependencies",
        "create-the-user-model",
        "auth-middleware",
        "login-route",
        "protect-the-api-routes",
        "tests",
        "document-the-authentication",
    ]
    deps = {t.id: t.depends_on for t in plan.tasks}
    assert deps["install-dependencies"] == []
    assert deps["auth-middleware"] == ["install-dependencies", "create-the-user-model"]
    assert deps["tests"] == ["login-route", "protect-the-api-routes"]
    assert plan.tasks[0].run == "npm install jsonwebtoken bcrypt"
    assert plan.tasks[5].run == "npm test"
    assert (
        plan.tasks[1].description
        == "A User model with an email and a password hash.\nIt is stored in the existing database."
    )
    assert plan.tasks[3].files == ["src/routes/auth.ts"]
    assert [t.action for t in plan.tasks] == ["install", "create", "create", "create", "modify", "test", "modify"]
    assert plan.prerequisites == ["package.json exists", "Node.js 18 or newer is installed"]
    assert [e.case for e in plan.edge_cases] == ["Expired token", "Missing JWT_SECRET"]
    assert plan.edge_cases[0].handling == 'the middleware answers 401 with "token expired"'
    assert plan.edge_cases[0].criteria == ["src/middleware/auth.ts contains `TokenExpiredError`"]
    assert plan.verification == ["`npm test` passes", "A user can log in and call a protected route"]
    # The same Plan as collecting the Markdown directly (the round trip loses nothing).
    from planrun.plugins.importers import import_markdown

    direct = import_markdown(JWT_PLAN, "PLAN.md", "PLAN")
    assert direct.model_dump() == plan.model_dump()


def test_imported_yaml_prose_criteria_fail_to_compile_located_in_the_yaml(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    assert planrunner.run("import", "PLAN.md", "-o", "jwt.plan.yaml").ret == ExitCode.OK
    text = (planrunner.path / "jwt.plan.yaml").read_text()
    result = planrunner.run("--co", "jwt.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    errors = compile_errors(result, "jwt.plan.yaml")
    assert set(errors) == set(PROSE), result
    for criterion in PROSE:
        line, col = where(text, criterion)
        assert errors[criterion] == f"jwt.plan.yaml:{line}:{col}", criterion


def test_markdown_collected_directly_errors_point_at_the_markdown(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    result = planrunner.run("--co", "PLAN.md")
    assert result.ret == ExitCode.INTERRUPTED
    errors = compile_errors(result, "PLAN.md")
    assert set(errors) == set(PROSE), result
    for criterion in PROSE:
        line, col = where(JWT_PLAN, criterion)
        assert errors[criterion] == f"PLAN.md:{line}:{col}", criterion
    assert "Traceback" not in result.outstr + result.errstr


def test_machine_checkable_criteria_compile_to_their_kinds(planrunner: Planrunner) -> None:
    machine = "\n".join(line for line in JWT_PLAN.splitlines() if not any(p in line for p in PROSE))
    planrunner.makefile("PLAN.md", machine)
    seen: dict[tuple[object, ...], list[tuple[str, tuple[int, int]]]] = {}

    class Spy:
        @hookimpl
        def planrun_collection_finish(self, session: object) -> None:
            for key, checks in session.plans[0].checks.items():  # type: ignore[attr-defined]
                seen[key] = [(c.kind, (c.location.line, c.location.col)) for c in checks]

    result = planrunner.run("--co", "PLAN.md", plugins=[Spy()])
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["*auth-middleware*", "*document-the-authentication*"])
    kinds = {key: [k for k, _ in checks] for key, checks in seen.items()}
    assert kinds[("prerequisites",)] == ["file_exists"]
    assert kinds[("tasks", 0)] == ["file_contains"]
    assert kinds[("tasks", 1)] == ["file_exists"]
    assert kinds[("tasks", 5)][1] == "file_exists"
    assert kinds[("tasks", 5)][0] in ("command", "tests")
    assert kinds[("edge_cases", 0)] == ["file_contains"]
    assert kinds[("verification",)] == kinds[("tasks", 5)][:1]
    assert seen[("tasks", 1)][0][1] == where(machine, "src/models/user.ts exists")


def test_yaml_style(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    result = planrunner.run("import", "PLAN.md")  # no -o: stdout
    assert result.ret == ExitCode.OK, result
    text = result.outstr
    lines = text.splitlines()
    assert lines[0] == "# yaml-language-server: $schema=plan.schema.json"
    top = [line.split(":")[0] for line in lines[1:] if line and not line.startswith((" ", "-", "#"))]
    assert top == ["plan", "id", "overview", "prerequisites", "tasks", "edge_cases", "verification"]
    first = text[text.index("  - id: install-dependencies") : text.index("  - id: create-the-user-model")]
    keys = [
        line.strip().removeprefix("- ").split(":")[0]
        for line in first.splitlines()
        if line.startswith(("  - ", "    ")) and not line.startswith("      ")
    ]
    assert keys == ["id", "name", "action", "files", "description", "run", "criteria"]
    assert "{" not in text and "[" not in text  # block style only
    assert "  - '`npm test` passes'" in text  # a leading backtick needs quotes
    assert "    - package.json exists" not in text and "  - package.json exists" in text  # plain when possible
    assert "    description: |" in text  # multi-line as a block
    assert "overview: |" in text
    assert "name: Install dependencies\n" in text
    assert yaml.safe_load(text)["tasks"][0]["run"] == "npm install jsonwebtoken bcrypt"
    same = planrunner.run("import", "PLAN.md", "-o", "-")
    assert same.outstr == text


def test_existing_output_needs_force(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    out = planrunner.makefile("jwt.plan.yaml", "keep me\n")
    result = planrunner.run("import", "PLAN.md", "-o", "jwt.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.strip() == "ERROR: jwt.plan.yaml: exists; pass --force to overwrite it"
    assert out.read_text() == "keep me\n"
    result = planrunner.run("import", "PLAN.md", "-o", "jwt.plan.yaml", "--force")
    assert result.ret == ExitCode.OK, result
    assert out.read_text().startswith("# yaml-language-server:")
    assert [p.name for p in planrunner.path.iterdir() if p.name.endswith(".tmp")] == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_dangling_symlink_output_is_not_followed_without_force(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    (planrunner.path / "out.plan.yaml").symlink_to(planrunner.path / "elsewhere.yaml")
    result = planrunner.run("import", "PLAN.md", "-o", "out.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert not (planrunner.path / "elsewhere.yaml").exists()


TASKS_JSON = {
    "tasks": [
        {
            "id": 1,
            "title": "Set up the project",
            "description": "Create package.json",
            "details": "Run npm init",
            "testStrategy": "package.json exists",
            "status": "done",
            "dependencies": [],
            "subtasks": [
                {"id": 1, "title": "Init npm", "description": "npm init -y", "dependencies": [], "status": "done"},
                {"id": 2, "title": "Add lint", "dependencies": [1], "testStrategy": ".eslintrc.json exists"},
            ],
        },
        {
            "id": 2,
            "title": "Add the server",
            "description": "Express server",
            "testStrategy": "src/server.js contains `express()`",
            "dependencies": [1],
            "status": "pending",
        },
    ]
}


@pytest.mark.parametrize("tagged", [False, True], ids=["plain", "tagged"])
def test_taskmaster_tasks_json_imports_and_collects(planrunner: Planrunner, tagged: bool) -> None:
    data = {"master": TASKS_JSON} if tagged else TASKS_JSON
    planrunner.makefile(".taskmaster/tasks/tasks.json", json.dumps(data, indent=2))
    result = planrunner.run("--co", ".taskmaster/tasks/tasks.json")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["*task-1-1*", "*task-1-2*", "*task-1*", "*task-2*"])
    result = planrunner.run("import", ".taskmaster/tasks/tasks.json", "-o", "tm.plan.yaml")
    assert result.ret == ExitCode.OK, result
    plan = read_plan(planrunner.path / "tm.plan.yaml", "tm.plan.yaml", max_bytes=1 << 20)
    deps = {t.id: t.depends_on for t in plan.tasks}
    assert deps == {"task-1-1": [], "task-1-2": ["task-1-1"], "task-1": ["task-1-1", "task-1-2"], "task-2": ["task-1"]}
    crit = {t.id: t.criteria for t in plan.tasks}
    assert crit["task-2"] == ["src/server.js contains `express()`"]
    assert crit["task-1-1"] == []
    assert plan.tasks[2].description == "Create package.json\n\nRun npm init"
    assert planrunner.run("--co", "tm.plan.yaml").ret == ExitCode.OK


def test_taskmaster_unknown_dependency_is_an_error(planrunner: Planrunner) -> None:
    bad = json.loads(json.dumps(TASKS_JSON))
    bad["tasks"][1]["dependencies"] = [9]
    planrunner.makefile("tasks.json", json.dumps(bad))
    result = planrunner.run("import", "tasks.json")
    assert result.ret == ExitCode.INTERRUPTED
    assert result.errstr.strip() == "ERROR: tasks.json: 'Add the server' depends on unknown task 'task-9'"
    assert result.outstr == ""


def test_json_that_is_not_taskmaster_is_left_to_the_yaml_loader(planrunner: Planrunner) -> None:
    planrunner.makefile("plan.json", json.dumps({"plan": "P", "tasks": [{"id": "a", "name": "A"}]}))
    result = planrunner.run("import", "plan.json")
    assert result.ret == ExitCode.OK, result
    assert "  - id: a\n    name: A\n" in result.outstr


def test_scanned_folder_still_collects_only_plan_yaml(planrunner: Planrunner) -> None:
    planrunner.makefile("plans/PLAN.md", JWT_PLAN)
    planrunner.makeplan("plans/ok", "plan: ok\ntasks:\n  - id: a\n    name: A\n")
    result = planrunner.run("--co", "plans")
    assert result.ret == ExitCode.OK, result
    assert "PLAN.md" not in result.outstr


BAD_INPUTS = [
    (
        "notaplan.md",
        "just some notes\n\n- a list\n",
        "ERROR: notaplan.md:1:1: not a Markdown plan: no '# Plan: NAME' heading",
    ),
    ("empty.md", "", "ERROR: empty.md:1:1: not a Markdown plan: no '# Plan: NAME' heading"),
    (
        "unknown.md",
        "# Plan: X\n\n### Task 1: A\n**Dependencies**: Task 1\n\n### Task 2: B\n**Dependencies**: Task 1, Task 7\n",
        "ERROR: unknown.md:7:27: dependency 'Task 7' names no task of this plan (tasks: Task 1, Task 2)",
    ),
    (
        "noname.md",
        "# Plan: X\n\n### Task 1:\n**Description**: d\n",
        "ERROR: noname.md:3:12: Task 1 has no name: write '### Task 1: NAME'",
    ),
    (
        "notasks.md",
        "# Plan: X\n\n## Overview\nnothing\n",
        "ERROR: notasks.md:1:1: the plan has no tasks: write '### Task 1: NAME' sections",
    ),
    (
        "cycle.md",
        "# Plan: X\n\n### Task 1: A\n**Dependencies**: Task 2\n\n### Task 2: B\n**Dependencies**: Task 1\n",
        "ERROR: cycle.md:4:19: dependency cycle: a -> b -> a",
    ),
    ("action.md", "# Plan: X\n\n### Task 1: A\n**Action**: juggle\n", "ERROR: action.md:4:13: tasks.0.action: *"),
    ("badjson.json", '{"tasks": [', "ERROR: badjson.json:1:12: invalid JSON: Expecting value"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_one_line_errors(planrunner: Planrunner, name: str, text: str, message: str) -> None:
    import fnmatch

    planrunner.makefile(name, text)
    result = planrunner.run("import", name, "-o", "out.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert len(result.errstr.splitlines()) == 1, result
    assert fnmatch.fnmatch(result.errstr.strip(), message), result.errstr
    assert not (planrunner.path / "out.plan.yaml").exists()
    collected = planrunner.run("--co", name)
    assert collected.ret == ExitCode.INTERRUPTED
    assert "Traceback" not in collected.outstr + collected.errstr
    assert any(fnmatch.fnmatch(line, message.removeprefix("ERROR: ")) for line in collected.outstr.splitlines()), (
        collected
    )


def test_non_utf8_markdown(planrunner: Planrunner) -> None:
    (planrunner.path / "PLAN.md").write_bytes(b"# Plan: X\n\n### Task 1: Caf\xe9\n")
    result = planrunner.run("import", "PLAN.md")
    assert result.ret == ExitCode.INTERRUPTED
    assert result.errstr.strip() == "ERROR: PLAN.md:3:16: not UTF-8 (byte 0xe9)"
    assert result.outstr == ""


def test_huge_file_over_max_plan_bytes(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN + "\n" + "x" * 5000 + "\n")
    result = planrunner.run("import", "PLAN.md", "--max-plan-bytes", "4096")
    assert result.ret == ExitCode.INTERRUPTED
    size = (planrunner.path / "PLAN.md").stat().st_size
    assert result.errstr.strip() == (
        f"ERROR: PLAN.md:1:1: plan file is {size} bytes, over the 4096-byte limit (raise it with --max-plan-bytes)"
    )
    collected = planrunner.run("--co", "--max-plan-bytes", "4096", "PLAN.md")
    assert collected.ret == ExitCode.INTERRUPTED
    collected.stdout.fnmatch_lines(["PLAN.md:1:1: plan file is * bytes, over the 4096-byte limit*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import"], "usage: planrun import*"),
        (["import", "missing.md"], "ERROR: missing.md: no such file"),
        (["import", "sub"], "ERROR: sub: not a regular file"),
        (["import", "a.md", "b.md"], "ERROR: planrun import takes one SOURCE file, got 2"),
        (["import", "PLAN.md", "-o"], "ERROR: -o needs a file name (or - for stdout)"),
        (["import", "PLAN.md", "--bogus"], "ERROR: *--bogus*"),
        (["import", "PLAN.md", "-o", "nodir/x.plan.yaml"], "ERROR: cannot write nodir/x.plan.yaml: *"),
    ],
)
def test_usage_errors(planrunner: Planrunner, args: list[str], message: str) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    planrunner.makefile("a.md", JWT_PLAN)
    planrunner.makefile("b.md", JWT_PLAN)
    planrunner.makefile("sub/c.md", JWT_PLAN)
    result = planrunner.run(*args)
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines([message])
    assert result.outstr == ""


def test_import_round_trips_a_yaml_plan(planrunner: Planrunner) -> None:
    src = Path(__file__).resolve().parent.parent / "plans" / "quickstart.plan.yaml"
    result = planrunner.run("import", str(src), "-o", "copy.plan.yaml")
    assert result.ret == ExitCode.OK, result
    original = read_plan(src, "q", max_bytes=1 << 20)
    again = read_plan(planrunner.path / "copy.plan.yaml", "c", max_bytes=1 << 20)
    assert again.model_dump(exclude={"schema_"}) == original.model_dump(exclude={"schema_"})
    assert isinstance(load_yaml(planrunner.path / "copy.plan.yaml").data, dict)


VARIANTS = """\
# Plan: Variants

## Tasks

### Task 1: Build
**Action**: Run
**Command**:
```bash
npm ci
npm run build
```
**Success Criteria**:
1. dist/index.js exists
2. dist/index.js contains
   `export`
**Notes**: not a field planrun knows
- not a criterion either
**Dependencies**: none

### Task 2: Lint
**Command**:
- `npm run lint`
- `npm run typecheck`
**Success Criteria**:
dist/index.js exists
**Dependencies**: Task 1 and Task 1

### Task 3: Build
**Dependencies**: 1, 2

### Task: Docs
**Dependencies**: Task 3

## Edge Cases

### Empty input
The parser returns an empty list.
**Success Criteria**:
- dist/index.js contains `[]`

### Unicode names
Handled by NFC normalisation.

## Notes
### Not an edge case
Ignored.
"""


def test_markdown_variants(planrunner: Planrunner) -> None:
    planrunner.makefile("V.md", VARIANTS)
    result = planrunner.run("import", "V.md", "-o", "v.plan.yaml")
    assert result.ret == ExitCode.OK, result
    plan = read_plan(planrunner.path / "v.plan.yaml", "v", max_bytes=1 << 20)
    build, lint, again, docs = plan.tasks
    assert (docs.id, docs.depends_on) == ("docs", ["build-2"])  # an unnumbered task is numbered in order
    assert build.run == "npm ci\nnpm run build"  # a fenced block
    assert build.action == "run"
    assert build.criteria == ["dist/index.js exists", "dist/index.js contains `export`"]  # wrapped item joined
    assert lint.run == ["npm run lint", "npm run typecheck"]  # a list of commands
    assert lint.criteria == ["dist/index.js exists"]  # a plain line
    assert lint.depends_on == ["build"]  # "Task 1 and Task 1": once
    assert again.id == "build-2" and again.depends_on == ["build", "lint"]  # unique ids; bare numbers
    assert [(e.case, e.handling, e.criteria) for e in plan.edge_cases] == [
        ("Empty input", "The parser returns an empty list.", ["dist/index.js contains `[]`"]),
        ("Unicode names", "Handled by NFC normalisation.", []),
    ]
    collected = planrunner.run("--co", "V.md")
    assert collected.ret == ExitCode.OK, collected
    line = where(VARIANTS, "- dist/index.js contains `[]`")[0]
    assert (
        f"""'dist/index.js contains `[]`' -> {{"file_contains": {{"path": "dist/index.js", "text": "[]"}}}}  [V.md:{line}:3]"""
        in collected.outstr
    )


TRICKY = """\
# Plan: 'Quoted' title: with a colon

## Overview
Line one #not a comment
  indented line
- a dash

### Task 1: No
**File**: `yes`, `1.0`, `null`, `~`, `@scope/pkg.json`
**Description**: "quoted" text
**Success Criteria**:
- `true` exists
- null
- * star: colon
- & anchor-like
**Command**: `echo "a: b" # c`
"""


def test_tricky_strings_round_trip(planrunner: Planrunner) -> None:
    from planrun.plugins.importers import import_markdown

    planrunner.makefile("T.md", TRICKY)
    result = planrunner.run("import", "T.md", "-o", "t.plan.yaml")
    assert result.ret == ExitCode.OK, result
    loaded = read_plan(planrunner.path / "t.plan.yaml", "t", max_bytes=1 << 20)
    direct = import_markdown(TRICKY, "T.md", "T")
    assert loaded.model_dump() == direct.model_dump()
    assert loaded.tasks[0].name == "No"
    assert loaded.tasks[0].files == ["yes", "1.0", "null", "~", "@scope/pkg.json"]
    assert loaded.tasks[0].criteria == ["`true` exists", "null", "* star: colon", "& anchor-like"]
    assert loaded.tasks[0].run == 'echo "a: b" # c'
    assert loaded.plan == "'Quoted' title: with a colon"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "line",
    [
        "# " + " " * 300_000 + "x",
        "### Task 1: " + "#" * 300_000 + " x",
        "**" + "*" * 300_000,
        "- **" + " " * 300_000 + "x",
    ],
    ids=["heading-spaces", "heading-hashes", "stars", "field-spaces"],
)
def test_pathological_lines_are_linear(planrunner: Planrunner, line: str) -> None:
    """A hang guard: patterns that backtrack quadratically would not finish."""
    planrunner.makefile("P.md", "# Plan: P\n\n### Task 1: A\n**Success Criteria**:\n" + line + "\n")
    result = planrunner.run("import", "P.md", "--max-plan-bytes", "2000000")
    assert result.ret in (ExitCode.OK, ExitCode.INTERRUPTED), result
    assert "Traceback" not in result.errstr


def test_importers_are_a_plugin_that_can_be_disabled(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    result = planrunner.run("import", "PLAN.md", "-p", "no:importers")
    assert result.ret == ExitCode.INTERRUPTED
    assert result.errstr.startswith("ERROR: PLAN.md:")  # the core's YAML loader read it, and refused it
    assert "not a Markdown plan" not in result.errstr
    assert "importers" in planrunner.run("--version").outstr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["tasks"][1].update(dependencies="1"),
            "ERROR: tasks.json: task 2: dependencies must be a list of task ids",
        ),
        (
            lambda d: d["tasks"][0].update(subtasks={"id": 1}),
            "ERROR: tasks.json: task 1: subtasks must be a list of tasks with ids",
        ),
        (lambda d: d["tasks"][1].update(id=True), "ERROR: tasks.json: task id True is not a number or a string"),
        (
            lambda d: d["tasks"][0]["subtasks"][1].update(dependencies=[7]),
            "ERROR: tasks.json: 'Add lint' depends on unknown task 'task-1-7'",
        ),
    ],
    ids=["deps-not-a-list", "subtasks-not-a-list", "bool-id", "unknown-subtask-dep"],
)
def test_taskmaster_malformed(planrunner: Planrunner, change: object, message: str) -> None:
    data = json.loads(json.dumps(TASKS_JSON))
    change(data)  # type: ignore[operator]
    planrunner.makefile("tasks.json", json.dumps(data))
    result = planrunner.run("import", "tasks.json", "-o", "out.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert result.errstr.strip() == message
    assert not (planrunner.path / "out.plan.yaml").exists()
    collected = planrunner.run("--co", "tasks.json")
    assert collected.ret == ExitCode.INTERRUPTED
    assert message.removeprefix("ERROR: ") in collected.outstr


def test_bulleted_fields_with_the_colon_inside_the_bold(planrunner: Planrunner) -> None:
    text = "# Plan: C\n\n### Task 1: A\n- **File:** `a.txt`\n- **Success Criteria:**\n  - [ ] a.txt exists\n\n### Task 2: B\n- **Dependencies:** Task 1\n- **Action:** Create\n"
    planrunner.makefile("C.md", text)
    result = planrunner.run("import", "C.md")
    assert result.ret == ExitCode.OK, result
    data = yaml.safe_load(result.outstr)
    assert data["tasks"] == [
        {"id": "a", "name": "A", "files": ["a.txt"], "criteria": ["a.txt exists"]},
        {"id": "b", "name": "B", "action": "create", "depends_on": ["a"]},
    ]
    collected = planrunner.run("--co", "C.md")
    assert collected.ret == ExitCode.OK, collected
    assert "[C.md:6:9]" in collected.outstr


def test_imported_plan_lints_with_its_prose_criteria_located(planrunner: Planrunner) -> None:
    planrunner.makefile("PLAN.md", JWT_PLAN)
    assert planrunner.run("import", "PLAN.md", "-o", "jwt.plan.yaml").ret == ExitCode.OK
    text = (planrunner.path / "jwt.plan.yaml").read_text()
    result = planrunner.run("lint", "jwt.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED  # its prose criteria do not compile: the plan does not load
    for criterion in PROSE:
        line, col = where(text, criterion)
        result.stdout.fnmatch_lines(
            [f"jwt.plan.yaml:{line}:{col}: PR002 criterion {criterion!r} is not machine-checkable*"]
        )
    result.stdout.fnmatch_lines([f"{len(PROSE)} findings in 1 plan (1 did not load)"])
