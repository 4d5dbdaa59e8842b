"""`@record` behaves as `@dataclass(frozen=True)` does, before and after its `__init__` is compiled."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from functools import cached_property

import pytest

from convcalc import records
from convcalc.records import COMPILE_AFTER, record


@record
class Point:
    """A point with a label that equality ignores."""

    x: int
    y: int = 0
    label: str = field(default="", compare=False, repr=False)
    tags: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


@record
class Point3(Point):
    z: int = 0


@dataclasses.dataclass(frozen=True)
class Reference:
    x: int
    y: int = 0
    label: str = field(default="", compare=False, repr=False)
    tags: tuple[str, ...] = field(default_factory=tuple)


CALLS = [((1,), {}), ((1, 2), {}), ((1,), {"y": 2, "label": "a"}), ((), {"x": 3, "tags": ("t",)}),
         ((1, 2, "b", ("u",)), {})]


def fresh_point(checked: bool = True) -> type:
    """A new record class like Point, whose __init__ has not been compiled yet; `checked`:
    made as under CONVCALC_CHECK_RECORDS=1 (assignment raises), else as by default."""
    saved, records.CHECKED = records.CHECKED, checked
    try:
        return _fresh_point()
    finally:
        records.CHECKED = saved


def _fresh_point() -> type:

    @record
    class Fresh:
        x: int
        y: int = 0
        label: str = field(default="", compare=False, repr=False)
        tags: tuple[str, ...] = field(default_factory=tuple)

    return Fresh


def test_the_suite_checks_that_records_stay_frozen():
    assert records.CHECKED  # set by conftest: assignment to a record's field raises everywhere here
    with pytest.raises(dataclasses.FrozenInstanceError):
        Point(1).x = 2  # type: ignore[misc]


@pytest.mark.parametrize("checked", [True, False], ids=["checked", "default"])
@pytest.mark.parametrize("compiled", [False, True], ids=["generic __init__", "compiled __init__"])
def test_a_record_is_a_frozen_dataclass(compiled, checked):
    cls = fresh_point(checked)
    made = [cls(0) for _ in range(COMPILE_AFTER + 1 if compiled else 1)]
    assert ("<locals>" in cls.__init__.__qualname__) and (cls.__init__.__code__.co_name == "__init__")
    assert (cls.__init__.__code__.co_argcount > 1) is compiled  # the compiled one names its fields
    assert made[0] == cls(0)
    for args, kwargs in CALLS:
        ours, theirs = cls(*args, **kwargs), Reference(*args, **kwargs)
        assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
        assert repr(ours).partition("(")[2] == repr(theirs).partition("(")[2]
    assert cls(1, 2, "a") == cls(1, 2, "b") and hash(cls(1, 2, "a")) == hash(cls(1, 2, "b"))
    assert cls(1, 2) != cls(2, 1) and cls(1) != Reference(1)
    assert cls(1).tags == ()
    assert vars(cls(1, 2, "c", ("v",))) == {"x": 1, "y": 2, "label": "c", "tags": ("v",)}
    if checked:
        with pytest.raises(dataclasses.FrozenInstanceError):
            cls(1).x = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            del cls(1).x
    for bad_args, bad_kwargs in [((), {}), ((1, 2, 3, 4, 5), {}), ((1,), {"x": 2}), ((1,), {"w": 2})]:
        with pytest.raises(TypeError):
            cls(*bad_args, **bad_kwargs)


def test_dataclass_functions_and_cached_properties_work():
    p = Point(3, -4, "a", ("t",))
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "label", "tags"]
    assert dataclasses.replace(p, y=4) == Point(3, 4, tags=("t",))
    assert dataclasses.asdict(p) == {"x": 3, "y": -4, "label": "a", "tags": ("t",)}
    assert p.norm1 == 7 and p.norm1 == 7  # cached in the instance dict, which frozen records allow
    assert Point.__match_args__ == ("x", "y", "label", "tags")


def test_a_subclass_adds_its_fields_after_its_bases():
    p = Point3(1, 2, z=3)
    assert (p.x, p.y, p.z) == (1, 2, 3)
    assert p != Point(1, 2)
    assert [f.name for f in dataclasses.fields(Point3)] == ["x", "y", "label", "tags", "z"]


def test_a_field_without_default_after_one_with_is_refused():
    with pytest.raises(TypeError, match="without a default"):
        @record
        class Bad:
            x: int = 0
            y: int
