"""custom_data: conversions to JSON-ready values, every offending key named, the 16 KiB cap.

Tested through ``make_event``, the way callers reach ``roasproof._custom_data``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from roasproof.errors import InvalidEvent
from roasproof.events import make_event


def invalid(**fields: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as excinfo:
        make_event("purchase", **fields)
    return excinfo.value


def problems_of(error: InvalidEvent) -> dict[str, str]:
    return {item.path: item.problem for item in error.errors}


class Color(StrEnum):
    RED = "red"


class Size(IntEnum):
    L = 3


def test_custom_data_converts_decimal_datetime_date_uuid_and_enums() -> None:
    when = datetime(2026, 7, 3, 9, 41, tzinfo=UTC)
    given_data = {
        "order_number": "10023",
        "total": Decimal("249.00"),
        "at": when,
        "day": date(2026, 7, 3),
        "id": uuid.UUID(int=5),
        "items": ({"sku": "A", "qty": 2, "price": 1.5, "gift": False, "note": None},),
        "color": Color.RED,
        "size": Size.L,
    }
    data = make_event("purchase", custom_data=given_data).custom_data
    assert data == {
        "order_number": "10023",
        "total": Decimal("249.00"),
        "at": "2026-07-03T09:41:00+00:00",
        "day": "2026-07-03",
        "id": "00000000-0000-0000-0000-000000000005",
        "items": [{"sku": "A", "qty": 2, "price": 1.5, "gift": False, "note": None}],
        "color": "red",
        "size": 3,
    }
    assert type(data["color"]) is str
    assert type(data["size"]) is int


def test_custom_data_is_copied_so_later_changes_do_not_alter_the_event() -> None:
    given_data: dict[str, Any] = {"tags": ["a"]}
    event = make_event("lead", custom_data=given_data)
    given_data["tags"].append("b")
    given_data["new"] = 1
    assert event.custom_data == {"tags": ["a"]}


class Opaque:
    pass


def test_custom_data_errors_name_every_offending_key() -> None:
    error = invalid(
        custom_data={
            "items": [1, 2, {1, 2}],
            "my key": Opaque(),
            "nested": {"ratio": float("inf"), 5: "x"},
            "total": Decimal("NaN"),
            "huge": Decimal("1E+999999999"),
        }
    )
    assert problems_of(error) == {
        "custom_data.items[2]": "is a set, which is not JSON-serializable",
        'custom_data["my key"]': "is a Opaque, which is not JSON-serializable",
        "custom_data.nested.ratio": "is not a finite number",
        "custom_data.nested[<int key>]": "has a key that is not a string",
        "custom_data.total": "is not a finite number of sensible size",
        "custom_data.huge": "is not a finite number of sensible size",
    }


def test_custom_data_must_be_a_mapping() -> None:
    assert invalid(custom_data=["a"]).fields == ["custom_data"]


def test_deeply_nested_or_cyclic_custom_data_is_rejected() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    error = invalid(custom_data=cyclic)
    assert error.errors[0].problem == "is nested over 32 levels deep"
    assert error.fields[0].startswith("custom_data.self.self")
    looped: list[Any] = []
    looped.append(looped)
    assert invalid(custom_data={"l": looped}).fields[0].startswith("custom_data.l[0][0]")


def serialized_size(data: Mapping[str, Any]) -> int:
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


@pytest.mark.parametrize("filler", ["a", "é", "\x01"])
def test_custom_data_up_to_16_kib_serialized_is_accepted_and_one_byte_more_is_not(
    filler: str,
) -> None:
    overhead = serialized_size({"k": ""})
    unit = serialized_size({"k": filler}) - overhead
    count = (16 * 1024 - overhead) // unit
    pad = "a" * ((16 * 1024 - overhead) - count * unit)
    fits = {"k": filler * count + pad}
    assert serialized_size(fits) == 16 * 1024
    assert make_event("lead", custom_data=fits).custom_data == fits
    error = invalid(custom_data={"k": filler * count + pad + "a"})
    assert error.fields == ["custom_data"]
    assert "16385 bytes" in error.errors[0].problem


def test_custom_data_size_counts_decimals_as_bare_numbers() -> None:
    overhead = serialized_size({"k": "", "d": 0})
    data = {"k": "a" * (16 * 1024 - overhead - 5), "d": Decimal("10.00")}
    assert make_event("lead", custom_data=data).custom_data == data


def _outcome(data: Mapping[Any, Any]) -> object:
    """The event's custom_data, or the problems InvalidEvent lists."""
    try:
        return make_event("lead", custom_data=data).custom_data
    except InvalidEvent as exc:
        return [(item.path, item.problem, item.fix) for item in exc.errors]


_flat_values = st.one_of(
    st.text(st.sampled_from(list('a é\x01"')), max_size=8),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.floats(),
    st.builds(lambda size: "x" * size, st.integers(16 * 1024 - 40, 16 * 1024)),
    st.sampled_from([Decimal("1.50"), [1], Color.RED, Size.L]),  # not flat: walked
)


@settings(derandomize=True)  # leave the seeds of the other tests as they were
@given(
    st.dictionaries(
        st.one_of(st.text(st.sampled_from(list("ab _1é")), max_size=4), st.integers(0, 2)),
        _flat_values,
        max_size=5,
    )
)
@example({"a": float("nan")})
@example({"a": -float("inf"), "b": 1.5})
@example({"k": "x" * (16 * 1024 - 8)})  # {"k":"..."} is 16 KiB exactly
@example({"k": "x" * (16 * 1024 - 7)})
@example({"k": "é" * 2000, "n": 2**64})  # the bound is high, the real size fine
def test_a_flat_dict_gets_what_the_walk_would_give_it(data: dict[Any, Any]) -> None:
    # A plain dict may skip the walk (is_flat); a read-only view of it never does.
    assert _outcome(data) == _outcome(MappingProxyType(data))


def test_a_flat_dict_is_still_copied() -> None:
    data: dict[str, Any] = {"order_id": "10023", "items": 3}
    event = make_event("lead", custom_data=data)
    data["items"] = 4
    assert event.custom_data == {"order_id": "10023", "items": 3}
