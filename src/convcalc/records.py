"""`@record`: a frozen dataclass that costs almost nothing to define or to make.

`@dataclass(frozen=True)` compiles six methods for every class when its module is imported
(`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`, `__delattr__`), about a
millisecond per class; the classes on the path of `convcalc shapes` made that a quarter of
the command's start-up. A record is the same dataclass (`dataclasses.fields`, `replace` and
`asdict` work on it, mypy checks it as one), but its methods are compiled the first time
they are called, so a class costs only what it uses. `__init__` is compiled only for a class
made many times (`COMPILE_AFTER`; compiling one costs as much as about a hundred calls of the
generic one it replaces).

Frozen is checked where it pays: mypy refuses an assignment to a record's field, and with
`CONVCALC_CHECK_RECORDS=1` in the environment (the test suite sets it) assigning or deleting
a field raises `FrozenInstanceError`, as with `@dataclass(frozen=True)`. Without it records
are made by plain attribute assignment: a class that overrides `__setattr__` cannot use
Python's fast path for it, and its compiled `__init__` must write the instance dict, which
costs three to four times as much per instance (and its dict over twice the memory) as
plain assignment; a 10,000-layer spec makes some 50,000 records.

Semantics are otherwise those of `@dataclass(frozen=True)`: fields in order (a base record's
first), `field(default=..., default_factory=..., compare=..., repr=..., hash=...)`,
`__post_init__`, equality and hash over the compared fields. Methods a class defines itself
are kept. Not supported (and not used): `InitVar`, `kw_only`, `init=False`.

Imports nothing from the package, and every module may import it, as it would `dataclasses`
(the layering test counts it below every layer).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # only type checkers read it (typing has it from Python 3.11)
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator

T = TypeVar("T", bound=type)

_MISSING = dataclasses.MISSING
COMPILE_AFTER = 64  # instances a record's generic __init__ makes before its own is compiled
# Assignment to a field raises (read when a class is decorated; the test suite sets it).
CHECKED = os.environ.get("CONVCALC_CHECK_RECORDS") == "1"


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: T) -> T:
    """Make `cls` a frozen dataclass whose methods are compiled when first used."""
    if cls.__doc__ is None:  # dataclasses would build one from inspect.signature: slow
        cls.__doc__ = cls.__name__
    dataclasses.dataclass(init=False, repr=False, eq=False)(cls)  # fields, defaults, __match_args__
    own = cls.__dict__
    defaulted = None
    for f in dataclasses.fields(cls):
        if f.default is not _MISSING or f.default_factory is not _MISSING:
            defaulted = f.name
        elif defaulted is not None:
            raise TypeError(f"{cls.__name__}: field '{f.name}' without a default follows '{defaulted}', which has one")
    checked = CHECKED
    if "__init__" not in own:
        type.__setattr__(cls, "__init__", _generic_init(cls, checked))
    for name, make in (("__repr__", _repr), ("__eq__", _eq)):
        if name not in own:
            _compile_on_first_call(cls, name, make)
    if own.get("__hash__") is None:  # not written by the class (None: set so by Python for its __eq__)
        _compile_on_first_call(cls, "__hash__", _hash)
    if checked:
        type.__setattr__(cls, "__setattr__", _frozen_setattr)
        type.__setattr__(cls, "__delattr__", _frozen_delattr)
    return cls


def _compile_on_first_call(cls: type, name: str, make: Callable[[type], Callable[..., Any]]) -> None:
    def first_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        method = make(cls)
        type.__setattr__(cls, name, method)
        return method(self, *args, **kwargs)

    first_call.__name__ = name
    first_call.__qualname__ = f"{cls.__qualname__}.{name}"
    type.__setattr__(cls, name, first_call)


def _generic_init(cls: type, checked: bool) -> Callable[..., None]:
    """An `__init__` for any record, which compiles the class's own at its COMPILE_AFTER-th call."""
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    known = frozenset(names)
    required = [f.name for f in fields if f.default is _MISSING and f.default_factory is _MISSING]
    defaults = [(f.name, f.default, f.default_factory) for f in fields if f.name not in required]
    post_init = hasattr(cls, "__post_init__")
    calls = 0

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """Every field's value, in order, from a call's arguments and the defaults."""
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments but {len(args)} were given")
        values = dict(zip(names, args))
        if kwargs:
            if not kwargs.keys() <= known or not values.keys().isdisjoint(kwargs):
                name = next(n for n in kwargs if n not in known or n in values)
                what = "multiple values for" if name in values else "an unexpected keyword"
                raise TypeError(f"{cls.__name__}() got {what} argument '{name}'")
            values.update(kwargs)
        missing = [name for name in required if name not in values]
        if missing:
            raise TypeError(f"{cls.__name__}() missing required argument '{missing[0]}'")
        for name, default, factory in defaults:
            if name not in values:
                values[name] = default if factory is _MISSING else factory()
        return tuple([values[name] for name in names])

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > COMPILE_AFTER:
            compiled = _init(cls, checked)
            type.__setattr__(cls, "__init__", compiled)
            compiled(self, *args, **kwargs)
            return
        if kwargs or len(args) != len(names):  # else every field is given, by position
            args = bind(args, kwargs)
        if checked:
            self.__dict__.update(zip(names, args))
        else:  # in field order, as the compiled one assigns: the instances share their dict's keys
            for name, value in zip(names, args):
                object.__setattr__(self, name, value)
        if post_init:
            self.__post_init__()

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _define(cls: type, name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    exec(source, namespace)  # noqa: S102 - the text is built from the class's field names
    method: Callable[..., Any] = namespace[name]
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    return method


def _init(cls: type, checked: bool) -> Callable[..., Any]:
    """The class's own `__init__`: plain assignments, or (`checked`, where `__setattr__`
    raises) writes to the instance dict."""
    # Names of the generated code start with `__record_`, so no field can shadow them.
    namespace: dict[str, Any] = {"__record_missing": _MISSING}
    params, body = ["self"], ["    __record_dict = self.__dict__"] if checked else []
    for f in dataclasses.fields(cls):
        target = f"__record_dict[{f.name!r}]" if checked else f"self.{f.name}"
        if f.default_factory is not _MISSING:
            namespace[f"__record_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=__record_missing")
            body.append(f"    {target} = __record_factory_{f.name}() if {f.name} is __record_missing else {f.name}")
            continue
        if f.default is not _MISSING:
            namespace[f"__record_default_{f.name}"] = f.default
            params.append(f"{f.name}=__record_default_{f.name}")
        else:
            params.append(f.name)
        body.append(f"    {target} = {f.name}")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + "\n".join(body) + "\n"
    return _define(cls, "__init__", source, namespace)


def _repr(cls: type) -> Callable[..., Any]:
    parts = ", ".join(f"{f.name}={{self.{f.name}!r}}" for f in dataclasses.fields(cls) if f.repr)
    source = f"def __repr__(self):\n    return f'{{type(self).__qualname__}}({parts})'\n"
    return _define(cls, "__repr__", source, {})


def _values(fields: list[dataclasses.Field[Any]], owner: str) -> str:
    """`(owner.a, owner.b, )`: a tuple of the fields' values, as source text."""
    return "(" + "".join(f"{owner}.{f.name}, " for f in fields) + ")"


def _eq(cls: type) -> Callable[..., Any]:
    compared = [f for f in dataclasses.fields(cls) if f.compare]
    source = ("def __eq__(self, other):\n"
              "    if other.__class__ is not self.__class__:\n"
              "        return NotImplemented\n"
              f"    return {_values(compared, 'self')} == {_values(compared, 'other')}\n")
    return _define(cls, "__eq__", source, {})


def _hash(cls: type) -> Callable[..., Any]:
    hashed = [f for f in dataclasses.fields(cls) if f.hash or (f.hash is None and f.compare)]
    source = f"def __hash__(self):\n    return hash({_values(hashed, 'self')})\n"
    return _define(cls, "__hash__", source, {})
