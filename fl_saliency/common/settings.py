"""One definition per setting: a dataclass field with its default, help, flag name and allowed values.

The commands' settings dataclasses declare their fields with :func:`setting`; ``check_settings``
(called from their ``__post_init__``) refuses values outside the declared range, and cli.py
derives every flag, its help, default and parsing from the same fields, so a default, a range or
a help text exists once. A value is checked by :func:`parse_value` (text from a command line) and
:func:`check_value` (a Python value), both with the same ranges and the same message.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import is_uri

MISSING = dataclasses.MISSING


def setting(default=MISSING, *, help: str, flag: str | None = None, min: float | None = None,
            max: float | None = None, above: float | None = None, choices: tuple[str, ...] | None = None,
            default_factory=MISSING, metavar: str | None = None, parse=None):
    """A dataclass field: ``min``/``max`` are inclusive bounds, ``above`` an exclusive lower bound;
    ``flag`` the command-line name when it is not ``--field-name``; ``parse`` turns command-line text
    into the value when the type alone does not say how (ValueError with the expected form)."""
    metadata = {"help": help, "flag": flag, "min": min, "max": max, "above": above, "choices": choices,
                "metavar": metavar, "parse": parse}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def field_types(cls) -> dict[str, type]:
    """The resolved annotations of a settings dataclass (its module uses ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def base_type(annotation) -> tuple[type, type | None]:
    """(the type, the element type of a list) without ``| None``: ``int | None`` -> (int, None),
    ``list[int] | None`` -> (list, int)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return origin, typing.get_args(annotation)[0]
    return annotation, None


def describe(field: dataclasses.Field, kind: type) -> str:
    """The allowed values, as the error messages say them: 'an integer >= 1', 'a number between 0 and 1'."""
    m = field.metadata
    if m.get("choices"):
        return "one of: " + ", ".join(m["choices"])
    noun = "an integer" if kind is int else "a number"
    if m.get("min") is not None and m.get("max") is not None:
        return f"{noun} between {_show(m['min'])} and {_show(m['max'])}"
    bounds = [f"{sign} {_show(m[key])}" for key, sign in (("above", ">"), ("min", ">="), ("max", "<="))
              if m.get(key) is not None]
    return f"{noun} {' and '.join(bounds)}" if bounds else noun


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _in_range(field: dataclasses.Field, x: float) -> bool:
    m = field.metadata
    return (math.isfinite(x)
            and (m.get("min") is None or x >= m["min"])
            and (m.get("max") is None or x <= m["max"])
            and (m.get("above") is None or x > m["above"]))


def check_value(field: dataclasses.Field, kind: type, value) -> str | None:
    """What is wrong with one (non-None) value of a field, or None when it is allowed."""
    m = field.metadata
    if m.get("choices"):
        return None if value in m["choices"] else f"must be {describe(field, kind)}, got {value!r}"
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"must be an integer, got {value!r}"
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"must be a number, got {value!r}"
    if kind in (int, float) and not _in_range(field, value):
        return f"must be {describe(field, kind)}, got {value!r}"
    return None


def parse_number(text: str, kind: type):
    """``kind`` from text; integers also as integral floats (``1e4``, ``5e7``), never rounded (``1.5`` is refused)."""
    text = text.strip()
    if kind is float:
        return float(text)
    try:
        return int(text)
    except ValueError:
        number = float(text)  # ValueError for text that is no number at all
        if not number.is_integer():
            raise ValueError(f"not an integer: {text}") from None
        return int(number)


def parse_value(field: dataclasses.Field, annotation, text: str):
    """A field's value from command-line text; ValueError with the allowed values when it is refused.
    Lists are comma-separated, each element parsed and checked."""
    kind, element = base_type(annotation)
    if field.metadata.get("parse"):
        value = field.metadata["parse"](text)
        problem = check_one(field, kind, element, value)
        if problem:
            raise ValueError(problem)
        return value
    if kind in (list, tuple):
        value = [_parse_one(field, element, item, plural=True) for item in text.split(",")]
        problem = field.metadata.get("choices") and check_one(field, kind, element, value)
        if problem:
            raise ValueError(problem)
        return value
    return _parse_one(field, kind, text)


def _parse_one(field: dataclasses.Field, kind: type, text: str, plural: bool = False):
    what = "a comma-separated list, each " if plural else ""
    if kind in (int, float):
        try:
            value = parse_number(text, kind)
        except ValueError:
            raise ValueError(f"must be {what}{describe(field, kind)}, got {text!r}") from None
        if not _in_range(field, value):
            raise ValueError(f"must be {what}{describe(field, kind)}, got {text!r}")
        return value
    if kind is str and plural and not text.strip():
        raise ValueError(f"must be a comma-separated list without empty items, got {text!r}")
    if kind is Path and is_uri(text):
        raise ValueError(f"takes a local folder, not the URI {text!r}")
    return Path(text).expanduser() if kind is Path else text


def check_settings(settings) -> None:
    """Refuse any field value outside its declared range or choices (FlSaliencyError naming the flag)."""
    hints = field_types(type(settings))
    for field in dataclasses.fields(settings):
        if "help" not in field.metadata:
            continue
        value = getattr(settings, field.name)
        if value is None:
            if type(None) in typing.get_args(hints[field.name]):
                continue
            problem = "must be given"
        else:
            problem = check_one(field, *base_type(hints[field.name]), value)
        if problem:
            raise FlSaliencyError(f"{flag_of(field)} {problem}")


def check_one(field: dataclasses.Field, kind: type, element: type | None, value) -> str | None:
    """What is wrong with a field's value (each element of a list or tuple), or None."""
    if kind not in (list, tuple):
        return check_value(field, kind, value)
    if not isinstance(value, (list, tuple)):
        return f"must be a list, got {value!r}"
    return next(filter(None, (check_value(field, element, item) for item in value)), None)


def same_as(cls, name: str):
    """A field with the default, range and help of ``cls``'s field ``name``: one setting that two commands share."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=field.default, default_factory=field.default_factory, metadata=field.metadata)


def import_callable(spec: str):
    """``package.module:function`` (a flag's value) -> that function; ValueError naming the problem."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute.isidentifier():
        raise ValueError(f"{spec!r} is not of the form package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for {spec}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{module_name} has no function {attribute!r}")
    return function


def register(registry: dict, builtin, kind: str, name: str, function, allowed: str = "_-") -> None:
    """Add a user's ``function`` to ``registry`` under ``name`` (a saliency method, a gaze metric): one line for a
    built-in name, a name unfit for file names and columns (letters, digits and ``allowed``), or no function."""
    if name in builtin:
        raise FlSaliencyError(f"{name!r} is a built-in {kind}; register yours under another name")
    if not name or not all(c.isalnum() or c in allowed for c in name):
        raise FlSaliencyError(f"a {kind} name is letters, digits or {', '.join(map(repr, allowed))}, got {name!r}")
    if not callable(function):
        raise FlSaliencyError(f"{kind} {name!r} is not callable")
    registry[name] = function
