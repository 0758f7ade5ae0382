"""The settings reference (``docs/settings.md``), generated from the models: every tap setting, every target
type's settings and the replay form's fields, with type, default, bounds and description.

``logtap settings-reference`` prints it; a unit test keeps the committed file equal to what this renders.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any, get_args

from pydantic.fields import FieldInfo

from airflow_provider_logtap.models import Settings, describe_type


def _metadata(annotation: Any) -> list[Any]:
    """The constraints inside an annotation (``Annotated[float, Field(ge=0)] | None``)."""
    found: list[Any] = []
    for item in getattr(annotation, "__metadata__", ()):
        found += item.metadata if isinstance(item, FieldInfo) else [item]
    for arg in get_args(annotation):
        found += _metadata(arg)
    return found


def _bounds(info: FieldInfo) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in [*info.metadata, *_metadata(info.annotation)]:
        for key, sign in words.items():
            value = getattr(item, key, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _default(model: type[Settings], name: str) -> str:
    if model.required(name):
        return "**required**"
    value = model.default_of(name)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, datetime):
        return f"`{value.isoformat().replace('+00:00', 'Z')}`"
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(model: type[Settings], names: tuple[str, ...], aliases: dict[str, str] | None = None) -> list[str]:
    lines = ["| Setting | Type | Default | Description |", "|---|---|---|---|"]
    for name in names:
        info = model.model_fields[name]
        kind = describe_type(info.annotation)
        bounds = _bounds(info)
        if bounds:
            kind = f"{kind} ({bounds})"
        shown = (aliases or {}).get(name, name)
        lines.append(
            f"| `{shown}` | {_cell(kind)} | {_cell(_default(model, name))} | {_cell(info.description or '')} |"
        )
    return lines


def _section(title: str, anchor: str, model: type[Settings], intro: str, **kw: Any) -> list[str]:
    names = kw.pop("names", model.setting_names())
    return [f'<a id="{anchor}"></a>', f"## {title}", "", intro, "", *_table(model, names, **kw), ""]


def render() -> str:
    from airflow_provider_logtap.replay import ReplayForm
    from airflow_provider_logtap.taps import Tap
    from airflow_provider_logtap.targets import REGISTRY

    lines = [
        "# logtap settings reference",
        "",
        "Generated from the settings models (`logtap settings-reference > docs/settings.md`); do not edit by "
        "hand. A taps file (`$LOGTAP_TAPS_FILE`, else `[logtap] taps_file` in Airflow's configuration, else "
        "`logtap_taps.yaml` beside the DAG files) lists taps under `taps:`; `defaults:` is merged under each "
        "tap. `null` is a value (where a setting allows it), not the default: remove a line to get the "
        "default. The operators take the same target settings as keyword arguments.",
        "",
        "Contents: [tap settings](#tap-settings)"
        + "".join(f", [{m.tag()}](#{m.tag()}-target)" for m in REGISTRY)
        + ", [replay form](#replay-form).",
        "",
    ]
    lines += _section("Tap settings", "tap-settings", Tap, inspect.cleandoc(Tap.__doc__ or ""))
    for model in REGISTRY:
        intro = f"`type: {model.tag()}`. {inspect.cleandoc(model.__doc__ or '')}"
        intro += f"\n\nOperator for your own DAGs: `{model.operator}`."
        lines += _section(f"Target `{model.tag()}`", f"{model.tag()}-target", model, intro)
    form_names = tuple(ReplayForm.model_fields)
    aliases = {n: i.alias for n, i in ReplayForm.model_fields.items() if i.alias}
    lines += _section(
        "Replay form",
        "replay-form",
        ReplayForm,
        "The `logtap_replay` DAG's form (Trigger DAG w/ config), or its `--conf` JSON. "
        + inspect.cleandoc(ReplayForm.__doc__ or "").split("\n\n")[0],
        names=form_names,
        aliases=aliases,
    )
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
