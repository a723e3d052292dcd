"""Model registry: family name -> model class. The one table of families; everything else
(estimators, CLI flags, the report's sections) is derived from the classes filed here.

A family is one file: a module defining a Config and a model class decorated with
``@register("name")``. The registry finds families in three places:

- every module of the ``aekit.models`` package (drop a file there: no other edit);
- the ``aekit.models`` entry-point group of installed distributions (a plugin package declares
  ``[project.entry-points."aekit.models"] mine = "my_package.my_family"``);
- the modules named in the ``AEKIT_PLUGINS`` environment variable (comma-separated module names
  importable from ``sys.path``), for a family kept in a single file of your own.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from typing import Any, Callable, TypeVar

T = TypeVar("T", bound=type)

__all__ = ["MODELS", "PLUGIN_GROUP", "PLUGIN_ENV", "build_model", "get_model_class", "model_names", "plugin_modules",
           "register"]

MODELS: dict[str, type] = {}
PLUGIN_GROUP = "aekit.models"
PLUGIN_ENV = "AEKIT_PLUGINS"
_loaded = False


def register(name: str) -> Callable[[T], T]:
    """Class decorator that files a model class under ``name``."""

    def deco(cls: T) -> T:
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {MODELS[name].__name__}")
        cls.name = name
        MODELS[name] = cls
        return cls

    return deco


def get_model_class(name: str) -> type:
    """The model class registered under ``name`` (the one place an unknown name is refused)."""
    _load_all()
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}") from None


def model_names() -> list[str]:
    _load_all()
    return sorted(MODELS)


def build_model(name: str, **config: Any):
    """Build model ``name`` from keyword settings of its Config dataclass."""
    cls = get_model_class(name)
    return cls(cls.Config(**config))


def plugin_modules() -> list[str]:
    """Module names of the families outside the package: ``AEKIT_PLUGINS``, then entry points."""
    names = [m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(",") if m.strip()]
    from importlib.metadata import entry_points

    names += [ep.value.split(":")[0] for ep in entry_points(group=PLUGIN_GROUP)]
    return list(dict.fromkeys(names))


def _load_all() -> None:
    """Import every family module once: the package's own, then the plugins."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import models

    for info in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{info.name}")
    for module in plugin_modules():
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ImportError(f"cannot import aekit model plugin {module!r} (from {PLUGIN_ENV} or the "
                              f"{PLUGIN_GROUP!r} entry points): {e}") from e
