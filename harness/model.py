"""The plan format as pydantic models: the source of validation and of the JSON Schema."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

TASK_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


def _shell(value: str) -> str:
    import shlex

    if value in ("bash", "sh"):
        return value
    if not value.strip():
        raise ValueError("empty shell: use bash, sh, or a command line with {0} for the step's script file")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"shell {value!r} is not a valid command line: {exc}") from None
    if not any("{0}" in word for word in words):
        raise ValueError(f"shell {value!r} has no {{0}}: use bash, sh, or a command line with {{0}} (the script file)")
    return value


#: How steps run: ``bash``, ``sh``, or a command line where ``{0}`` is the path of the step's script.
Shell = Annotated[StrictStr, AfterValidator(_shell)]

_SHELL_HELP = (
    "How run: steps are run: bash (bash --noprofile --norc -eo pipefail), sh (sh -e), "
    "or a command line with {0} for the step's script file (python3 {0}). Default: bash if installed, else sh"
)


def _criterion(value: Any) -> Any:
    if not isinstance(value, (str, dict)):
        raise ValueError(f"a criterion is a string or a mapping with one check kind, not {type(value).__name__}")
    return value


#: A criterion as written: a string sentence, or a mapping with one check kind.
#: The compiler validates it against the registered check kinds.
Criterion = Annotated[
    Any,
    BeforeValidator(_criterion),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "object", "minProperties": 1}]}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, defer_build=True)


class Task(_Model):
    """One atomic task: what to change, and how to know it is done."""

    id: StrictStr = Field(pattern=TASK_ID_PATTERN, description="Unique in the plan: [a-z0-9][a-z0-9_-]*")
    name: StrictStr = Field(min_length=1, description="Display name")
    action: Literal["create", "modify", "delete", "install", "run", "configure", "test", "other"] | None = None
    file: StrictStr | None = Field(default=None, description="Shorthand for files: [X]")
    files: list[StrictStr] = Field(default_factory=list, description="What this task may change")
    description: StrictStr = ""
    run: StrictStr | list[StrictStr] | None = Field(
        default=None, description="Shell step(s), run in the workdir by the shell executor"
    )
    shell: Shell | None = Field(default=None, description=_SHELL_HELP + "; overrides the plan's")
    depends_on: list[StrictStr] = Field(default_factory=list, description="Ids of tasks this one needs")
    complexity: Literal["low", "medium", "high"] | None = None
    criteria: list[Criterion] = Field(default_factory=list, description="Success criteria")

    @model_validator(mode="after")
    def _file_into_files(self) -> Task:
        if self.file is not None and self.file not in self.files:
            self.files.insert(0, self.file)
        return self

    @property
    def steps(self) -> list[str]:
        if self.run is None:
            return []
        return [self.run] if isinstance(self.run, str) else list(self.run)


class EdgeCase(_Model):
    """An edge case the plan handles, with criteria that show it is handled."""

    case: StrictStr
    handling: StrictStr = ""
    criteria: list[Criterion] = Field(default_factory=list)


class Plan(_Model):
    """A plan file: an overview, prerequisites, tasks, edge cases and a verification."""

    schema_: StrictStr | None = Field(default=None, alias="$schema")
    plan: StrictStr = Field(min_length=1, description="The plan's title")
    id: StrictStr | None = Field(
        default=None, pattern=TASK_ID_PATTERN, description="Default: the file name without .plan.yaml"
    )
    overview: StrictStr = ""
    workdir: StrictStr | None = Field(default=None, description="Relative to this file; default: the rootdir")
    workspace: Literal["inplace", "temp", "copy"] = "inplace"
    executor: StrictStr | None = None
    shell: Shell | None = Field(default=None, description=_SHELL_HELP)
    assumptions: list[StrictStr] = Field(default_factory=list)
    prerequisites: list[Criterion] = Field(default_factory=list)
    tasks: list[Task] = Field(min_length=1)
    edge_cases: list[EdgeCase] = Field(default_factory=list)
    verification: list[Criterion] = Field(default_factory=list)

    #: Where the plan came from (a :class:`planrun.planfile.PlanSource`), set by the loader.
    _source: Any = PrivateAttr(default=None)


#: Words users write for a key, and the key planrun knows.
SYNONYMS = {
    "dependencies": "depends_on",
    "deps": "depends_on",
    "depends": "depends_on",
    "requires": "depends_on",
    "success_criteria": "criteria",
    "acceptance_criteria": "criteria",
    "checks": "criteria",
    "title": "plan",
    "name": "plan",
    "steps": "run",
    "command": "run",
    "commands": "run",
    "prerequisite": "prerequisites",
    "edge-cases": "edge_cases",
    "edgecases": "edge_cases",
    "verify": "verification",
    "path": "file",
    "paths": "files",
}


_CRITERION_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "object", "minProperties": 1}]}
_SHORTHAND = {"type": ["string", "number", "integer", "boolean", "array", "null"]}


def json_schema(checks: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON Schema of the plan format (draft-07, for yaml-language-server).

    :param checks: ``{check kind: JSON Schema of its argument model}``. Each
        becomes a mapping form of a criterion (the kind's arguments, or a
        shorthand scalar, plus the common keys); a mapping naming none of
        them stays allowed, for check kinds that conftest files add.
    """
    schema = Plan.model_json_schema(by_alias=True)
    out = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "planrun plan", **schema}
    if not checks:
        return out
    from planrun.compiler import CommonKeys

    common = {k: v for k, v in CommonKeys.model_json_schema()["properties"].items()}
    defs = out.setdefault("$defs", {})
    forms: list[dict[str, Any]] = [{"type": "string"}]
    for kind in sorted(checks):
        args = dict(checks[kind])
        for name, sub in args.pop("$defs", {}).items():
            defs.setdefault(name, sub)
        forms.append(
            {
                "type": "object",
                "properties": {kind: {"anyOf": [args, _SHORTHAND]}, **common},
                "required": [kind],
                "additionalProperties": False,
            }
        )
    forms.append({"type": "object", "minProperties": 1, "not": {"anyOf": [{"required": [k]} for k in sorted(checks)]}})
    defs["Criterion"] = {"anyOf": forms}
    return _replace_criterion(out)  # type: ignore[no-any-return]


def _replace_criterion(node: Any) -> Any:
    if node == _CRITERION_SCHEMA:
        return {"$ref": "#/$defs/Criterion"}
    if isinstance(node, dict):
        return {k: _replace_criterion(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_criterion(v) for v in node]
    return node
