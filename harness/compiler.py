"""Criteria -> Check objects, before anything runs: a bad criterion is a collection error."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from planrun.errors import CompileError
from planrun.planfile import (
    PlanSource,
    did_you_mean,
    dotted_path,
    fields_at,
    not_a_name,
    shown,
    what_it_is,
    yaml_reads,
)
from planrun.registry import CheckRegistry
from planrun.types import CheckFunction, Location

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Plan


class CommonKeys(BaseModel):
    """Keys any criterion may carry besides its check kind."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    name: StrictStr | None = None
    timeout: float | None = Field(default=None, gt=0, le=86400, allow_inf_nan=False)
    retry_for: float = Field(default=0, ge=0, le=86400, allow_inf_nan=False)
    skip: StrictStr | None = None


COMMON_KEYS = tuple(CommonKeys.model_fields)
_DEFAULT_COMMON = CommonKeys()  # what a criterion without common keys has (never mutated)


@dataclass(slots=True)
class Check:
    """One compiled criterion: a check function bound to validated arguments."""

    kind: str
    args: Any
    function: CheckFunction
    name: str
    location: Location
    timeout: float
    retry_for: float = 0.0
    skip: str | None = None
    inprocess: bool = False  # cheap: re-checked after every later task (see CheckKind)
    text: str | None = None  # the sentence, for string criteria
    source: dict[str, Any] = field(default_factory=dict)  # the mapping form, for --co

    def __str__(self) -> str:
        return self.name


class Compiler:
    """Compiles the criteria of plans using a registry and the compile hook."""

    def __init__(self, config: Config, registry: CheckRegistry, hook: Any = None) -> None:
        self.config = config
        self.registry = registry
        self.hook = hook or config.hook

    def compile(self, raw: Any, loc: tuple[Any, ...], source: PlanSource) -> Check:
        """Compile one criterion found at ``loc`` in the plan ``source``.

        :raises CompileError: located at the criterion (or the offending key).
        """
        where = source.locate(loc)
        if isinstance(raw, str):
            mapping = self.hook.planrun_compile_criterion(text=raw, location=where, config=self.config)
            if mapping is None:
                judge = " or enable --judge" if "llm_judge" in self.registry.kinds else ""
                forms = closest_forms(raw, self._sentence_forms())
                if not forms:
                    hint = "write it as a check (e.g. file_contains)"
                else:
                    hint = "write it as " + " or ".join(repr(form) for form, _ in forms)
                    hint += f", or as a check (e.g. {forms[0][1]})"
                raise self._error(where, f"criterion {raw!r} is not machine-checkable; {hint}{judge}")
            return self._compile_mapping(mapping, where, None, text=raw)
        if not isinstance(raw, dict):
            raise self._error(
                where, f"a criterion is a string or a mapping with one check kind, not {type(raw).__name__}"
            )
        return self._compile_mapping(raw, where, (source, loc))

    def _sentence_forms(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """The ``SENTENCE_FORMS`` each criterion compiler in scope declares (see plugins/strings.py)."""
        forms: list[tuple[str, str, tuple[str, ...]]] = []
        for impl in self.hook.planrun_compile_criterion.get_hookimpls():
            declared = getattr(impl.plugin, "SENTENCE_FORMS", None)
            if isinstance(declared, (list, tuple)):
                forms.extend(f for f in declared if isinstance(f, tuple) and len(f) == 3)
        return forms

    def _error(self, where: Location, message: str) -> CompileError:
        return CompileError(message, where.path, where.line or None, where.col or None)

    def _compile_mapping(
        self,
        mapping: dict[str, Any],
        where: Location,
        origin: tuple[PlanSource, tuple[Any, ...]] | None,
        text: str | None = None,
    ) -> Check:
        def at(sub: tuple[Any, ...], *, key: bool = False) -> Location:
            if origin is None:  # a compiled sentence: every error points at the sentence
                return where
            source, loc = origin
            return source.locate((*loc, *sub), key=key)

        registered = self.registry.kinds
        if len(mapping) == 1 and next(iter(mapping)) in registered:  # the usual criterion: one check kind
            kinds = known = list(mapping)
        else:
            kinds = [k for k in mapping if k not in COMMON_KEYS]
            known = [k for k in kinds if k in registered]
        if len(known) > 1:
            raise self._error(
                where, f"criterion has {len(known)} check kinds ({', '.join(known)}); write one per criterion"
            )
        unknown = [k for k in kinds if k not in registered] if len(known) != len(kinds) else []
        if unknown:
            key = unknown[0]
            if not isinstance(key, str):
                raise self._error(at((key,), key=True), f"criterion key {shown(key)} is not a string")
            choices = [*self.registry.kinds, *COMMON_KEYS]
            hint = did_you_mean(key, choices)
            msg = f"unknown check kind {shown(key)}" if not known else f"unknown key {shown(key)} in criterion"
            msg += f"; did you mean {hint!r}?" if hint else f" (known: {', '.join(sorted(self.registry.kinds))})"
            raise self._error(at((key,), key=True), msg)
        if not known:
            raise self._error(where, "criterion has no check kind")
        name = known[0]
        kind = self.registry.kinds[name]
        common = _DEFAULT_COMMON
        if len(mapping) > 1:  # one validation per criterion when it only names its check
            common_raw = {k: v for k, v in mapping.items() if k in COMMON_KEYS}
            try:
                common = CommonKeys.model_validate(common_raw)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                raise self._error(at(tuple(err["loc"])), _message(err)) from None
        try:
            args = kind.args.model_validate(mapping[name])
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            sub = tuple(err["loc"])
            if err["type"] == "invalid_key" and origin is not None:  # a key YAML reads as a date, number, ...
                source, loc = origin
                key = err.get("input")
                raise not_a_name(source, (*loc, name, *sub[:-1], key), key, f"{name}: ", CompileError) from None
            msg = f"{name}: {_message(err, kind.args)}"
            if err["type"] == "extra_forbidden":
                hint = did_you_mean(str(sub[-1]), fields_at(tuple(p for p in sub[:-1] if not _is_tag(p)), kind.args))
                msg += f"; did you mean {hint!r}?" if hint else ""
            raise self._error(at((name, *sub), key=err["type"] == "extra_forbidden"), msg) from None
        if kind.args.model_config.get("frozen"):
            _share_fields_set(args)
        display = common.name or text or (kind.describe(args) if kind.describe else f"{name} {mapping[name]!r}")
        timeout = common.timeout if common.timeout is not None else kind.default_timeout
        return Check(
            kind=name,
            args=args,
            function=kind.function,
            name=display,
            location=where,
            timeout=timeout,
            retry_for=common.retry_for,
            skip=common.skip,
            inprocess=kind.inprocess,
            text=text,
            source=mapping,
        )

    def compile_plan(self, plan: Plan) -> dict[tuple[Any, ...], list[Check]]:
        """Compile every criterion of ``plan``, keyed by the owner's location tuple.

        Keys: ``("prerequisites",)``, ``("tasks", i)``, ``("edge_cases", i)``,
        ``("verification",)``.

        :raises CompileError: the first criterion that does not compile; its
            ``errors`` attribute lists all of them.
        """
        source: PlanSource = plan._source or PlanSource(plan.id or "<plan>")
        owners: list[tuple[tuple[Any, ...], tuple[Any, ...], list[Any]]] = [
            (("prerequisites",), ("prerequisites",), plan.prerequisites)
        ]
        owners += [(("tasks", i), ("tasks", i, "criteria"), t.criteria) for i, t in enumerate(plan.tasks)]
        owners += [
            (("edge_cases", i), ("edge_cases", i, "criteria"), e.criteria) for i, e in enumerate(plan.edge_cases)
        ]
        owners.append((("verification",), ("verification",), plan.verification))
        compiled: dict[tuple[Any, ...], list[Check]] = {}
        errors: list[CompileError] = []
        for key, loc, criteria in owners:
            checks = []
            for j, raw in enumerate(criteria):
                try:
                    checks.append(self.compile(raw, (*loc, j), source))
                except CompileError as exc:
                    errors.append(exc)
            compiled[key] = checks
        if errors:
            errors[0].errors = errors  # type: ignore[attr-defined]
            raise errors[0]
        return compiled


# The sets of fields given, one per distinct set: a frozen model never changes its own, and a plan
# holds thousands of argument models with a handful of distinct ones (less to keep, pickle and load).
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _share_fields_set(model: BaseModel) -> None:
    given = model.__pydantic_fields_set__
    shared = _FIELDS_SETS.setdefault(frozenset(given), given)
    if shared is not given:
        object.__setattr__(model, "__pydantic_fields_set__", shared)


_HTTP_METHODS = frozenset("GET POST PUT PATCH DELETE HEAD OPTIONS".split())
_TOKEN = re.compile(r"`[^`]*`?|https?://\S+|\S+")
_PLACEHOLDERS = frozenset({"PATH", "METHOD", "URL", "NNN"})


def _shape(text: str, *, template: bool = False) -> list[str]:
    """A sentence as tokens: quoted spans, URLs, methods, statuses and paths become placeholders."""
    out = []
    for token in _TOKEN.findall(text):
        if token.startswith("`"):
            out.append("`X`")
            continue
        word = token.strip(".,;:!?\"'()")
        if not word:
            continue
        if word.startswith(("http://", "https://")):
            out.append("URL")
        elif template and word in _PLACEHOLDERS:
            out.append(word)
        elif not template and word.upper() in _HTTP_METHODS and word.isupper():
            out.append("METHOD")
        elif not template and re.fullmatch(r"[1-5]\d\d", word):
            out.append("NNN")
        elif not template and ("/" in word or re.search(r"\w\.\w", word)):
            out.append("PATH")
        else:
            out.append(word.lower())
    return out


def _similarity(a: list[str], b: tuple[str, ...]) -> float:
    """Dice coefficient of the longest common subsequence, words matching when spelt alike."""
    if not a or not b:
        return 0.0
    prev = [0.0] * (len(b) + 1)
    for x in a:
        row = [0.0]
        for j, y in enumerate(b):
            same = _alike(x, y)
            row.append(prev[j] + 1 if same else max(prev[j + 1], row[j]))
        prev = row
    return 2 * prev[-1] / (len(a) + len(b))


@lru_cache(maxsize=1 << 16)
def _alike(x: str, y: str) -> bool:
    """Two words match when spelt alike (cached: a plan's sentences repeat their words)."""
    return x == y or (len(x) > 3 and len(y) > 3 and difflib.SequenceMatcher(None, x[:64], y[:64]).ratio() >= 0.8)


@lru_cache(maxsize=256)
def _template(text: str) -> tuple[str, ...]:
    return tuple(_shape(text, template=True))


def closest_forms(text: str, forms: list[tuple[str, str, tuple[str, ...]]]) -> list[tuple[str, str]]:
    """The sentence forms ``text`` came closest to, best first: ``[(form, kind), ...]``, at most two.

    Nothing when no form shares enough of its shape (prose stays prose).
    """
    shape = _shape(text)
    longest = max((len(_template(v)) for form, _, variants in forms for v in (form, *variants)), default=0)
    if len(shape) > 3 * longest:
        return []  # the score is at most 2 * longest / (len(shape) + longest): below 0.5, and costly to compute
    scored = []
    for form, kind, variants in forms:
        best = max((_similarity(shape, _template(v)) for v in (form, *variants)), default=0.0)
        scored.append((best, form, kind))
    scored.sort(key=lambda s: -s[0])
    if not scored or scored[0][0] < 0.5:
        return []
    top = scored[0][0]
    return [(form, kind) for score, form, kind in scored[:2] if score >= top - 0.05]


#: What a pydantic type error expected, as a plan's author reads it.
_EXPECTED = {
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "float_type": "a number",
    "int_type": "an integer",
    "bool_type": "true or false",
}


def _message(err: Any, args: type[BaseModel] | None = None) -> str:
    """One pydantic error of a criterion (of its check's argument model ``args``, or its common keys) as a line.

    Type errors say what was expected and what YAML read (``expected a
    string, but YAML reads this unquoted value as a number (1.1); quote
    it``), as the plan's own keys do; never a model's class name.
    """
    kind, value = err["type"], err.get("input")
    parts = tuple(p for p in err["loc"] if not _is_tag(p))
    loc = dotted_path(parts) if parts else ""
    if kind == "extra_forbidden":
        return f"unknown key {shown(err['loc'][-1])}"
    if kind == "missing" and err["loc"]:
        owner_parts = tuple(p for p in err["loc"][:-1] if not _is_tag(p))
        owner = dotted_path(owner_parts) if owner_parts else ""
        msg = f"required key {err['loc'][-1]!r} missing"
        return f"{owner}: {msg}" if owner else msg
    msg = err["msg"].removeprefix("Value error, ")
    expected = _EXPECTED.get(kind)
    if expected is not None and not loc and kind in ("model_type", "dict_type") and args is not None:
        expected = "a string or a mapping" if _takes_text(args) else f"a mapping ({_keys(args)})"
    read = yaml_reads(value)
    if expected is None:
        if isinstance(value, float) and not math.isfinite(value):
            msg = f"{value} is not a finite number"
    elif value is None:
        msg = f"expected {expected}, but the value is empty"
    elif read is not None and "string" in expected:
        msg = f"expected {expected}, but {read}; quote it"
    elif read is not None and isinstance(value, bool) and ("number" in expected or "integer" in expected):
        msg = f"expected {expected}, but {read}"  # `timeout: no`
    else:
        msg = f"expected {expected}, got {what_it_is(value)}"
    return f"{loc}: {msg}" if loc else msg


def _keys(args: type[BaseModel], most: int = 6) -> str:
    """A check's argument keys as written, required ones first: ``keys: path, pattern, text, count, min``."""
    fields = sorted(args.model_fields.items(), key=lambda nf: not nf[1].is_required())
    names = [f.alias or n for n, f in fields]
    return "keys: " + ", ".join(names[:most]) + (", ..." if len(names) > most else "")


@cache
def _takes_text(args: type[BaseModel]) -> bool:
    """Whether a check kind has a short form that is a string (``file_exists: a.txt``, ``command: make``)."""
    try:
        args.model_validate("x")
    except ValidationError as exc:
        return not any(e["type"] in ("model_type", "dict_type") and not e["loc"] for e in exc.errors())
    except Exception:  # a shorthand validator that chokes on a sample: it takes text, just not this one
        return True
    return True


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        "[" in part or part in ("str", "list", "dict", "function-before", "function-after")
    )
