"""The config reference, generated from the model so that it can never drift from it."""

from __future__ import annotations

import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from classhub.config.model import Course, Site


def _type_name(annotation) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return text or str(annotation).replace("typing.", "").replace("pathlib.", "")


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    nested = []
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        inner = [a for a in typing.get_args(annotation) if isinstance(a, type)] or [annotation]
        sub = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        key = f"{prefix}{name}"
        if sub is not None:
            listed = typing.get_origin(annotation) is list
            nested.append((sub, f"{key}[]." if listed else f"{key}."))
            kind = "list of entries" if listed else "section"
            rows.append(f"| `{key}` | {kind} | | {sub.__doc__.strip().splitlines()[0]} |")
            continue
        if field.default is not PydanticUndefined:
            default = f"`{field.default}`"
        elif field.default_factory is not None:
            default = f"`{field.default_factory()}`"
        else:
            default = "required"
        description = (field.description or "").replace("\n", " ")
        rows.append(f"| `{key}` | `{_type_name(annotation)}` | {default} | {description} |")
    out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |", *rows, ""]
    for sub, sub_prefix in nested:
        out += [f"### `{sub_prefix.rstrip('.')}`", "", (sub.__doc__ or "").strip(), ""]
        _section(sub, sub_prefix, out)


def config_reference() -> str:
    out = [
        "# Config reference",
        "",
        "Generated from `classhub/config/model.py` by `classhub docs -o docs/config-reference.md`;",
        "a test fails when this file and the model disagree. Unknown keys are errors.",
        "",
        "## Site config (`site.yaml`)",
        "",
        (Site.__doc__ or "").strip(),
        "",
    ]
    _section(Site, "", out)
    out += ["## Course (`courses/<id>/course.yml`)", "", (Course.__doc__ or "").strip(), ""]
    _section(Course, "", out)
    return "\n".join(out).rstrip() + "\n"
