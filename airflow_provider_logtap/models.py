"""Typed settings: one pydantic model per tap and per target type is the single definition of each setting
(type, default, bounds, choices, description, fix), and everything else derives from it: validation that
reports every error at once in the words of the taps file (:func:`field_errors`), the operators' arguments,
the replay form's JSON schema (:func:`param_schema`) and the settings reference (:mod:`.reference`).

A model's fields are declared with :func:`setting`; checks that need code (a regex, a path, a time zone) are
``Annotated[..., checked(fn)]`` with ``fn`` raising :class:`~airflow_provider_logtap.errors.ConfigurationError`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from airflow_provider_logtap.errors import ConfigurationError

#: The generated settings reference (``logtap settings-reference`` writes it; a test keeps it current).
SETTINGS_DOC = "docs/settings.md"

T = TypeVar("T")


def setting(
    default: Any = PydanticUndefined,
    *,
    description: str,
    fix: str | None = None,
    templated: bool = False,
    example: Any = None,
    **constraints: Any,
) -> Any:
    """A setting of a model: its default (none: required), description, optional ``fix`` (what to write
    instead, shown with errors), whether operators render it as a Jinja template, an example, and pydantic
    constraints (``ge``, ``gt``, ``le``, ``pattern``, ``strict``...)."""
    extra: dict[str, Any] = dict(constraints.pop("json_schema_extra", None) or {})
    if fix:
        extra["fix"] = fix
    if templated:
        extra["templated"] = True
    return Field(
        default,
        description=description,
        json_schema_extra=extra or None,
        examples=None if example is None else [example],
        **constraints,
    )


class SettingError(ConfigurationError):
    """A check of several settings that names the one to fix (raised by a model validator)."""

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(message)


def checked(check: Callable[[T], object]) -> AfterValidator:
    """A validator running ``check`` (which raises ``ConfigurationError``) on the value, which it keeps."""

    def run(value: T) -> T:
        check(value)
        return value

    return AfterValidator(run)


class Settings(BaseModel):
    """Base of logtap's settings models: immutable, keyword-only, strict types, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, use_attribute_docstrings=False)

    #: What the settings are called in messages ("tap", "s3_archive target").
    kind_label: ClassVar[str] = "settings"
    #: The settings reference's section of this model.
    anchor: ClassVar[str] = ""

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The settings a user writes (a target's ``type`` tag excluded), in the order the docs and messages
        list them: required ones first, then the class's own before those of its bases."""
        order: list[str] = []
        for klass in cls.__mro__:
            for name in getattr(klass, "__annotations__", {}):
                if name in cls.model_fields and name != "type" and name not in order:
                    order.append(name)
        order += [n for n in cls.model_fields if n not in order and n != "type"]
        return tuple(sorted(order, key=lambda n: not cls.model_fields[n].is_required()))

    @classmethod
    def required(cls, name: str) -> bool:
        return cls.model_fields[name].is_required()

    @classmethod
    def default_of(cls, name: str) -> Any:
        info = cls.model_fields[name]
        return None if info.is_required() else info.get_default(call_default_factory=True)

    @classmethod
    def templated_fields(cls) -> tuple[str, ...]:
        return tuple(n for n in cls.setting_names() if _extra(cls.model_fields[n]).get("templated"))

    @classmethod
    def param_docs(cls) -> str:
        """``:param name: description (default ...)`` lines for an operator's docstring."""
        lines = []
        for name in cls.setting_names():
            info = cls.model_fields[name]
            default = "required" if info.is_required() else f"default ``{cls.default_of(name)!r}``"
            lines.append(f"    :param {name}: {info.description} ({default}).")
        return "\n".join(lines)

    def settings(self) -> dict[str, Any]:
        """``{setting: value}`` (without the ``type`` tag)."""
        return {n: getattr(self, n) for n in self.setting_names()}


# -- errors in the taps file's words ------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One invalid setting: where (``target.prefix``), what is wrong, and how to fix it."""

    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"field {self.field!r} {self.problem}. Fix: {self.fix}"


def describe_type(annotation: Any) -> str:
    """A type in the words of a YAML file: ``an integer``, ``a number or null``, ``one of {'a', 'b'}``."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return describe_type(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        parts = list(dict.fromkeys(describe_type(a) for a in get_args(annotation) if a is not type(None)))
        nullable = type(None) in get_args(annotation)
        return " or ".join(parts) + (" or null" if nullable else "")
    if origin is Literal:
        return "one of {" + ", ".join(repr(a) for a in get_args(annotation)) + "}"
    if origin in (tuple, list):
        return f"a list of {describe_type(get_args(annotation)[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        datetime: "a date or date-time (2026-01-01 or 2026-01-01T00:00:00Z)",
        date: "a date",
        type(None): "null",
    }
    if annotation in names:
        return names[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping with a type"
    return str(annotation)


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return dict(extra) if isinstance(extra, Mapping) else {}


def _value(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def _problem_of_check(message: str, name: str) -> str:
    """A check's message as the predicate of "field 'x' ...", without repeating the setting's name."""
    text = message.strip().rstrip(".")
    for prefix in (f"{name} ", f"{name}: ", f"{name}="):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text if text.split(" ", 1)[0] in _PREDICATES else f"is invalid: {text}"


_PREDICATES = {"is", "must", "has", "cannot", "can", "needs", "repeats", "does", "names", "matches", "lies"}


def _lookup(
    model: type[BaseModel], loc: Sequence[str | int]
) -> tuple[type[BaseModel], FieldInfo | None, str]:
    """The model owning the last name of ``loc`` (through a discriminated union's tag), its field, and the
    dotted user-facing name."""
    names: list[str] = []
    current: type[BaseModel] = model
    info: FieldInfo | None = None
    i = 0
    while i < len(loc):
        part = str(loc[i])
        info = current.model_fields.get(part)
        names.append(part)
        if info is None:
            break
        union = _models_of(info.annotation)
        if union and i + 1 < len(loc):
            tag = str(loc[i + 1])
            chosen = next((m for m in union if _tag(m) == tag), None)
            if chosen is not None:
                current, i = chosen, i + 2
                info = None
                continue
            if len(union) == 1:
                current, i = union[0], i + 1
                info = None
                continue
        i += 1
    return current, info, ".".join(names)


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    args = get_args(annotation)
    if get_origin(annotation) is typing.Annotated:
        return _models_of(args[0])
    candidates = args if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    return [a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)]


def _tag(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("type")
    return None if info is None else info.default


def field_errors(model: type[Settings], error: ValidationError, *, prefix: str = "") -> list[FieldError]:
    """Every error of ``error`` (a validation of ``model``) as a :class:`FieldError`, in field order."""
    out: list[FieldError] = []
    seen: set[str] = set()
    for e in error.errors(include_url=False):
        owner, info, name = _lookup(model, e["loc"])
        if e["type"] == "union_tag_invalid" or e["type"] == "union_tag_not_found":
            name = f"{name}.type"
        where = prefix + name
        if where in seen:  # a field's union alternatives each complain: the first is enough
            continue
        seen.add(where)
        out.append(_field_error(owner, info, where, e))
    return sorted(out, key=lambda f: _position(model, f.field.removeprefix(prefix)))


def _position(model: type[Settings], dotted: str) -> tuple[int, ...]:
    """Where a dotted setting comes in ``model``'s order (nested targets by their own order)."""
    head, _, rest = dotted.partition(".")
    names = model.setting_names()
    index = names.index(head) if head in names else len(names)
    info = model.model_fields.get(head)
    if rest and info is not None:
        for sub in _models_of(info.annotation):
            sub_names = sub.setting_names() if issubclass(sub, Settings) else ()
            if rest in sub_names:
                return (index, sub_names.index(rest))
        return (index, -1 if rest == "type" else 999)
    return (index,)


def _field_error(owner: type[BaseModel], info: FieldInfo | None, where: str, e: Any) -> FieldError:
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    leaf = where.rsplit(".", 1)[-1]
    cause = ctx.get("error")
    if kind == "value_error" and isinstance(cause, SettingError) and info is None:
        where = f"{where}.{cause.setting}" if where else cause.setting
        leaf, info = cause.setting, owner.model_fields.get(cause.setting)
    label = getattr(owner, "kind_label", "settings")
    see = f"see {SETTINGS_DOC}#{_anchor(owner)}"
    expected = describe_type(info.annotation) if info is not None else ""

    def hint(first: str = "") -> str:
        """What to write: ``first``, the setting's own fix or description, its default, the reference."""
        own = (_extra(info).get("fix") or info.description or "") if info is not None else ""
        default = (
            f"default {info.get_default(call_default_factory=True)!r} (remove the line to use it)"
            if info is not None and not info.is_required()
            else ""
        )
        parts = [p.rstrip(".") for p in (first, own, default, see) if p]
        return "; ".join(
            p if i == 0 or p[1:2].isupper() else p[:1].lower() + p[1:] for i, p in enumerate(parts)
        )

    if kind == "extra_forbidden":
        names = list(owner.setting_names()) if issubclass(owner, Settings) else list(owner.model_fields)
        names = [owner.model_fields[n].alias or n for n in names]
        close = difflib.get_close_matches(leaf, names, n=1)
        hint_text = f" (did you mean {close[0]!r}?)" if close else ""
        return FieldError(
            where,
            f"is not one of the {label}'s settings",
            f"remove it{hint_text}; the settings are {', '.join(names)}",
        )
    if kind == "missing":
        return FieldError(where, "is required", hint(f"add {where}: <{expected}>"))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = str(ctx.get("expected_tags", ""))
        got = f". Got {ctx.get('tag')!r}" if kind == "union_tag_invalid" else ""
        problem = f"must be one of {{{tags}}}{got}" if kind == "union_tag_invalid" else "is required"
        return FieldError(where, problem, f"set {where} to one of {tags.replace(chr(39), '')}; {see}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return FieldError(where, f"must be a mapping, not {_value(value)}", hint())
    if kind == "literal_error":
        choices = ", ".join(repr(a) for a in get_args(info.annotation)) if info is not None else ""
        choices = choices or str(ctx.get("expected", ""))
        return FieldError(where, f"must be one of {{{choices}}}. Got {value!r}", hint())
    if kind in ("value_error", "assertion_error"):
        message = str(cause) if cause is not None else str(e["msg"]).removeprefix("Value error, ")
        return FieldError(where, _problem_of_check(message, leaf), hint())
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        limit = ctx.get(key)
        return FieldError(
            where, f"must be {words} {limit!r}, not {value!r}", hint(f"set it to {words} {limit!r}")
        )
    if kind == "string_pattern_mismatch":
        return FieldError(where, f"must match {ctx.get('pattern')}, not {value!r}", hint())
    if kind.endswith(("_type", "_parsing", "_from_datetime_inexact")):
        return FieldError(
            where, f"must be {expected or 'of another type'}, not {_value(value)}", hint(f"write {expected}")
        )
    return FieldError(where, f"is invalid: {e['msg']}", hint())


def _anchor(model: type[BaseModel]) -> str:
    tag = _tag(model)
    return f"{tag}-target" if tag else str(getattr(model, "anchor", "tap-settings"))


def validate(
    model: type[Settings], data: Mapping[str, Any], *, prefix: str = ""
) -> tuple[Any, list[FieldError]]:
    """``(instance, [])`` or ``(None, errors)``."""
    try:
        return model.model_validate(dict(data)), []
    except ValidationError as exc:
        return None, field_errors(model, exc, prefix=prefix)


def errors_text(errors: Iterable[FieldError]) -> str:
    return "; ".join(str(e) for e in errors)


def build(model: type[Settings], data: Mapping[str, Any], *, owner: str) -> Any:
    """An instance of ``model`` from ``data``, or one ``ConfigurationError`` naming ``owner`` and every error."""
    value, errors = validate(model, data)
    if errors:
        raise ConfigurationError(f"{owner}: {errors_text(errors)}")
    return value


def check_setting(model: type[Settings], name: str, value: Any, *, owner: str) -> Any:
    """``value`` checked as ``model``'s setting ``name`` (an operator argument mirroring a tap setting), or one
    ``ConfigurationError`` in the same words as the taps file's."""
    info = model.model_fields[name]
    field_type: Any = Annotated[info.annotation, info]
    adapter: TypeAdapter[Any] = TypeAdapter(field_type, config=model.model_config)
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        raise ConfigurationError(f"{owner}: {_field_error(model, info, name, e)}") from None


# -- the replay form's JSON schema ---------------------------------------------------------------------------


def param_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The JSON schema of one field of ``model``, shaped as Airflow's trigger form reads ``Param`` s: simple
    ``type`` lists (``["null", "string"]`` for an optional string), ``enum``, ``pattern``, ``title``,
    ``description``, ``examples``; without the default (a ``Param``'s first argument).

    An array's ``examples`` are left out: both Airflow UIs read them as the array's only choices (a multi-select
    of those values), and Airflow 2.11's form fails to render (HTTP 500) when such a field has no value yet."""
    schema = dict(model.model_json_schema(mode="validation")["properties"][name])
    schema.pop("default", None)
    schema.pop("fix", None)
    schema.pop("templated", None)
    options = schema.pop("anyOf", None)
    if options:
        kinds: list[str] = []
        for option in options:
            option = dict(option)
            kind = option.pop("type", None)
            if kind is not None:
                kinds.append(kind)
            if kind != "null":
                for key, val in option.items():
                    schema.setdefault(key, val)
        schema["type"] = sorted(set(kinds), key=lambda k: (k != "null", k))
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "array" in schema.get("type", ()):
        schema.pop("examples", None)
    return schema
