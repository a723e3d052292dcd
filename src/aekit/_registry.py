"""Model registry: family name -> model class. Adding a family means adding one file."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T", bound=type)

MODELS: dict[str, type] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator that files a model class under ``name``."""

    def deco(cls: T) -> T:
        if name in MODELS:
            raise ValueError(f"model name {name!r} is already registered to {MODELS[name].__name__}")
        cls.name = name
        MODELS[name] = cls
        return cls

    return deco


def get_model_class(name: str) -> type:
    """The model class registered under ``name``."""
    _load_builtin()
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(model_names())}") from None


def model_names() -> list[str]:
    _load_builtin()
    return sorted(MODELS)


def build_model(name: str, **config: Any):
    """Build model ``name`` from keyword settings of its Config dataclass."""
    cls = get_model_class(name)
    return cls(cls.Config(**config))


def _load_builtin() -> None:
    from . import models  # noqa: F401  (importing the package registers every family)
