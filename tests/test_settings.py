"""The typed-settings parser (diffrl.settings): conversion, refusal, one-line messages."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from diffrl.settings import (
    Discount,
    PositiveFloat,
    PositiveInt,
    SettingsError,
    parse,
    parse_assignments,
    settings,
)


@settings
class Example:
    width: PositiveInt = 4  # a count
    lr: PositiveFloat = 1e-3  # a rate
    gamma: Discount = 0.99
    decay: bool = True
    kind: Literal["a", "b"] = "a"

    def __post_init__(self) -> None:
        if self.kind == "b" and self.width > 8:
            raise ValueError("kind b allows width ≤ 8")


def test_strings_from_the_command_line_become_typed_values():
    got = parse(Example, {"width": "6", "lr": "3e-4", "decay": "false", "kind": "b"}, "here")
    assert (got.width, got.lr, got.decay, got.kind) == (6, 3e-4, False, "b")
    assert parse(Example, {"decay": "0"}, "x").decay is False
    assert parse(Example, {"decay": "1"}, "x").decay is True
    assert parse(Example, {"decay": "true"}, "x").decay is True


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"width": "1.5"}, "here: setting 'width': Input should be a valid integer"),
        ({"width": 2.5}, "setting 'width': Input should be a valid integer, got a number with"),
        ({"width": True}, "setting 'width': expected an integer, not a boolean"),
        ({"width": 0}, "setting 'width': Input should be greater than 0; found 0"),
        ({"lr": "fast"}, "setting 'lr': Input should be a valid number.*found 'fast'"),
        ({"lr": "inf"}, "setting 'lr': Input should be a finite number"),
        ({"gamma": 1.2}, "setting 'gamma': Input should be less than or equal to 1"),
        ({"decay": "maybe"}, "setting 'decay': Input should be a valid boolean"),
        ({"kind": "c"}, "setting 'kind': Input should be 'a' or 'b'; found 'c'"),
        ({"wdth": 3}, "here: unknown setting .wdth.; valid settings: decay, gamma, kind, lr"),
        ({"kind": "b", "width": 9}, "here: kind b allows width ≤ 8"),
    ],
)
def test_bad_values_are_refused_in_one_line(values, message):
    with pytest.raises(SettingsError, match=message) as info:
        parse(Example, values, "here")
    assert "\n" not in str(info.value)


def test_settings_are_frozen_hashable_and_revalidated_on_replace():
    a, b = Example(), Example()
    assert a == b and hash(a) == hash(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.width = 3
    with pytest.raises(ValueError, match="greater than 0"):
        dataclasses.replace(a, width=-1)


def test_assignments():
    assert parse_assignments(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(SettingsError, match="--set expects KEY=VALUE, found 'oops'"):
        parse_assignments(["oops"])
    with pytest.raises(SettingsError, match="found '=3'"):
        parse_assignments(["=3"])
