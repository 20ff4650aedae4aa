"""The ``manual`` check kind: a criterion a person checks; reported as skipped."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from planrun import ArgsModel, CheckContext, CheckKind, hookimpl, skip


class ManualArgs(ArgsModel):
    text: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value


def manual(args: ManualArgs, ctx: CheckContext) -> None:
    skip(f"manual: {args.text}", manual=True)


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("manual", ManualArgs, manual, lambda a: f"manual: {a.text}", default_timeout=1)]
