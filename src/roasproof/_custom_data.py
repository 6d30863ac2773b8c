"""custom_data: copied into plain JSON-ready values, checked, and bounded in size.

Ad platforms and the ingest API take any JSON object here, so the rules are
JSON's: string keys, finite numbers, no sets or arbitrary objects. Values that
have one obvious JSON form (Decimal, datetime, date, UUID, enum members) are
converted. Every offending key is reported at once with its dotted path
(``custom_data.items[2]``); the copy also means a later change to the caller's
dict cannot alter a queued event.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from roasproof._event_checks import Problems, fail, fail_many

__all__ = ["CUSTOM_DATA_MAX_BYTES", "check_custom_data", "is_flat"]

CUSTOM_DATA_MAX_BYTES = 16 * 1024
_MAX_DEPTH = 32
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_custom_data(value: object) -> dict[str, Any]:
    """A JSON-ready copy of ``value``, or fail naming every offending key."""
    if type(value) is dict and is_flat(value):
        return dict(value)
    if not isinstance(value, Mapping):
        fail("must be a mapping (dict)", "pass e.g. custom_data={'order_number': '10023'}")
    cleaner = _Cleaner()
    cleaned = cleaner.mapping(value, "", 1)
    if cleaner.problems:
        fail_many(cleaner.problems)
    # The walk's upper bound settles the usual small mapping without serializing it.
    if cleaner.bound > CUSTOM_DATA_MAX_BYTES:
        size = _serialized_size(cleaned)
        if size > CUSTOM_DATA_MAX_BYTES:
            fail(
                f"is {size} bytes once serialized, more than the 16 KiB allowed",
                "send only the properties ad platforms need; keep the rest on your side",
            )
    return cleaned


def is_flat(value: dict[Any, Any]) -> bool:
    """Whether ``value`` is the usual custom_data, which :func:`check_custom_data` copies as is.

    The usual custom_data is a small flat dict of str keys and str, int, bool, None or
    finite float values: the walk would convert nothing and, with the same size bound,
    need no serializing; found here in one loop without method calls.
    """
    bound = 2
    for key, item in value.items():
        if type(key) is not str:
            return False
        kind = type(item)
        if kind is str:
            bound += 6 * len(key) + 6 * len(item) + 6
        elif kind is int:
            bound += 6 * len(key) + item.bit_length() // 3 + 6
        elif item is None or kind is bool:
            bound += 6 * len(key) + 9
        elif kind is float and math.isfinite(item):
            bound += 6 * len(key) + 28
        else:
            return False
    return bound <= CUSTOM_DATA_MAX_BYTES


def _subpath(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


class _Cleaner:
    """Walks custom_data once: converts values, collects every problem, bounds the size.

    ``bound`` is an upper bound of the compact UTF-8 JSON size (a character takes
    at most 6 bytes, as a ``\\uXXXX`` escape), so only mappings that might be too
    large are serialized to be measured exactly.
    """

    __slots__ = ("bound", "problems")

    def __init__(self) -> None:
        self.problems: Problems = []
        self.bound = 0

    def mapping(self, value: Mapping[Any, Any], path: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.bound += 2
        for key, item in value.items():
            if not isinstance(key, str):
                where = f"{path}[<{type(key).__name__} key>]"
                self.problems.append((where, "has a key that is not a string", "use str keys"))
                continue
            key = str.__str__(key)
            self.bound += 6 * len(key) + 4
            out[key] = self.value(item, path, key, depth)
        return out

    def value(self, value: Any, path: str, key: str | int, depth: int) -> Any:
        """One JSON-ready value; problems are collected, never raised, to report them all."""
        kind = type(value)
        if kind is str:
            self.bound += 6 * len(value) + 2
            return value
        if value is None or kind is bool:
            self.bound += 5
            return value
        if kind is int:
            self.bound += value.bit_length() // 3 + 2
            return value
        if isinstance(value, float):
            self.bound += 24
            if math.isfinite(value):
                return float(value)
            self.problem(path, key, "is not a finite number", "send a number or leave it out")
            return None
        if isinstance(value, str | int):  # StrEnum, IntEnum and friends
            return self.value(
                str.__str__(value) if isinstance(value, str) else int(value), path, key, depth
            )
        if isinstance(value, Decimal):
            return self.decimal(value, path, key)
        if isinstance(value, datetime | date | UUID):
            text = value.isoformat() if isinstance(value, date) else str(value)
            self.bound += len(text) + 2
            return text
        if isinstance(value, Mapping | list | tuple):
            if depth >= _MAX_DEPTH:
                self.problem(path, key, f"is nested over {_MAX_DEPTH} levels deep", "flatten it")
                return None
            inner = _subpath(path, key)
            if isinstance(value, Mapping):
                return self.mapping(value, inner, depth + 1)
            self.bound += 2 + len(value)
            return [self.value(item, inner, i, depth + 1) for i, item in enumerate(value)]
        self.problem(
            path,
            key,
            f"is a {type(value).__name__}, which is not JSON-serializable",
            "convert it to str, int, float, Decimal, bool, None, list or dict",
        )
        return None

    def decimal(self, value: Decimal, path: str, key: str | int) -> Decimal | None:
        # Bound the written length first: format(Decimal("1E+999999999"), "f") is a gigabyte.
        _, digits, exponent = value.as_tuple()
        if isinstance(exponent, int) and len(digits) + abs(exponent) <= CUSTOM_DATA_MAX_BYTES:
            self.bound += len(digits) + abs(exponent) + 3
            return value
        self.problem(path, key, "is not a finite number of sensible size", "send an amount")
        return None

    def problem(self, path: str, key: str | int, problem: str, fix: str) -> None:
        """Record a problem; the offending value becomes None in the (discarded) copy."""
        self.problems.append((_subpath(path, key), problem, fix))


def _serialized_size(data: dict[str, Any]) -> int:
    """Bytes of ``data`` as compact UTF-8 JSON (Decimals counted as bare numbers)."""
    count = 0

    def default(value: Decimal) -> str:  # the walk left only Decimals to convert
        nonlocal count
        count += 1
        return format(value, "f")

    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=default)
    return len(text.encode()) - 2 * count
