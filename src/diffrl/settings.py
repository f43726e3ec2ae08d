"""Typed settings: one parser for presets, `--set`, config.json and the Python API.

Every run and agent setting is a field of a frozen dataclass made by `settings`, with a declared
type and range (the aliases below). Construction validates and converts (pydantic does the
work): "false" and "0" become False, "256" becomes 256, 1.5 for an integer, "fast" for a float,
a negative learning rate or an unknown name is refused. `parse` turns the first problem into a
`SettingsError` of one line naming the key, what was expected and what was found.

This module imports pydantic only (no JAX), so the CLI can check settings before anything heavy
loads and before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import pydantic
from annotated_types import Ge, Gt, Interval
from pydantic import BeforeValidator, ConfigDict

T = TypeVar("T")

_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


class SettingsError(ValueError):
    """A setting has the wrong type, is out of range or is unknown (one line)."""


def settings(cls: type[T]) -> type[T]:
    """Make `cls` a frozen, validating dataclass (hashable, so usable as a static jit argument)."""
    return pydantic.dataclasses.dataclass(frozen=True, config=_CONFIG)(cls)


def _not_bool(value: Any) -> Any:
    # pydantic would read True as 1; a boolean where a count belongs is a mistake
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    return value


_Int = Annotated[int, BeforeValidator(_not_bool)]
PositiveInt = Annotated[_Int, Gt(0)]  # counts: steps, widths, batch sizes
NonNegativeInt = Annotated[_Int, Ge(0)]  # seeds, ranks, steps that may be 0
PositiveFloat = Annotated[float, Gt(0)]  # learning rates, temperatures, bounds
NonNegativeFloat = Annotated[float, Ge(0)]  # weights that may be switched off with 0
Discount = Annotated[float, Interval(gt=0, le=1)]  # γ in (0, 1]
Rate = Annotated[float, Interval(gt=0, le=1)]  # Polyak and EMA rates in (0, 1]
Fraction = Annotated[float, Interval(ge=0, lt=1)]  # dropout, expectile-like shares in [0, 1)
Probability = Annotated[float, Interval(ge=0, le=1)]
Expectile = Annotated[float, Interval(gt=0, lt=1)]  # τ of an expectile loss in (0, 1)


def parse(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """`cls(**values)`, with the first problem raised as a one-line SettingsError."""
    try:
        return cls(**values)
    except pydantic.ValidationError as exc:
        raise SettingsError(describe_error(exc, cls, where)) from None


def describe_error(exc: pydantic.ValidationError, cls: type, where: str) -> str:
    """One line for the first error of `exc`: the key, the expectation and the value found."""
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or "?"
    if err["type"] == "unexpected_keyword_argument":
        valid = ", ".join(sorted(field_names(cls)))
        return f"{where}: unknown setting '{key}'; valid settings: {valid}"
    message = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:  # a check across settings (__post_init__)
        return f"{where}: {message}"
    return f"{where}: setting '{key}': {message}; found {err.get('input')!r}"


def field_names(cls: type) -> list[str]:
    return list(cls.__dataclass_fields__)


def parse_assignments(items: list[str], flag: str = "--set") -> dict[str, str]:
    """`key=value` strings as a dict of raw strings; the types are the settings' business."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{flag} expects KEY=VALUE, found {item!r}")
        out[key.strip()] = value.strip()
    return out
