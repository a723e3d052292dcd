"""Settings as data: a Config field declares its default, type and help once (``option``), and
everything that shows or parses a setting (estimator signatures and docstrings, CLI flags, ``load``)
reads that declaration through :class:`Param`. Imports nothing heavy, so the CLI can use it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Param", "option", "params_of", "parse_kinds"]

_SCALARS = ("bool", "int", "float", "str")


def option(default: Any, help: str, **extra: Any) -> Any:
    """A Config field with its default and a one-line help.

    ``extra`` keys: ``estimator_default`` (the default an estimator uses instead, e.g. ``"auto"``
    resolved from the data at fit), ``from_data=True`` (set by the estimator from the data, not
    a user parameter, e.g. a conditional model's number of classes).
    """
    return field(default=default, metadata={"help": help, **extra})


def parse_kinds(annotation: str) -> tuple[str, ...]:
    """The value kinds a type annotation admits, in order: ``"tuple[int, ...] | None"`` ->
    ``("tuple:int", "none")``. Kinds: bool, int, float, str, none, tuple:<scalar>."""
    kinds = []
    for part in (p.strip() for p in str(annotation).split("|")):
        if part == "None":
            kinds.append("none")
        elif part.startswith(("tuple", "list")):
            inner = part[part.find("[") + 1 :].split(",")[0].strip(" ]") if "[" in part else "float"
            kinds.append(f"tuple:{inner if inner in _SCALARS else 'float'}")
        elif part in _SCALARS:
            kinds.append(part)
        else:
            kinds.append("str")
    return tuple(kinds)


@dataclass(frozen=True)
class Param:
    """One user-facing setting: name, default, help and the value kinds it admits."""

    name: str
    default: Any
    help: str
    kinds: tuple[str, ...]

    @property
    def is_tuple(self) -> bool:
        return any(k.startswith("tuple:") for k in self.kinds)

    @property
    def is_bool(self) -> bool:
        return self.kinds == ("bool",)

    def coerce(self, value: Any) -> Any:
        """A value read back from JSON or TOML in the parameter's own type (lists become tuples)."""
        if isinstance(value, list) and self.is_tuple:
            return tuple(value)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "default": self.default, "help": self.help, "kinds": list(self.kinds)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Param:
        kinds = tuple(d["kinds"])
        p = cls(d["name"], d["default"], d["help"], kinds)
        return cls(p.name, p.coerce(p.default), p.help, kinds)


def params_of(config_cls, *, estimator: bool = False, skip: tuple[str, ...] = ()) -> dict[str, Param]:
    """The settings a Config dataclass declares, in field order. ``estimator=True`` gives what an
    estimator exposes: ``estimator_default`` overrides applied, ``from_data`` fields left out."""
    out: dict[str, Param] = {}
    for f in dataclasses.fields(config_cls):
        if f.name in skip or (estimator and f.metadata.get("from_data")):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if estimator and "estimator_default" in f.metadata:
            default = f.metadata["estimator_default"]
        out[f.name] = Param(f.name, default, f.metadata.get("help", ""), parse_kinds(f.type))
    return out
