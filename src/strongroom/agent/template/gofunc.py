"""The interface between the executor and the template functions: ``GoFunc`` (a function and its Go
signature, which the executor checks arguments against) and ``FuncError`` (what a function raises)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class FuncError(Exception):
    """Raised by a template function: becomes ``error calling NAME: MESSAGE``."""


@dataclass(frozen=True, slots=True)
class GoFunc:
    """A template function and its Go signature.

    Parameter type codes: ``any`` (interface{}: an absent value arrives as None), ``value`` (reflect.Value:
    the raw value, MISSING included), ``string``, ``int``, ``bool``, ``[]string``.
    """

    fn: Callable[..., Any]
    params: tuple[str, ...] = ()
    variadic: str | None = None
    short_circuit: bool = False  # and / or
