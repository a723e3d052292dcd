"""Estimator parameters as command-line flags, derived from the families' declared settings.

The catalog (family -> estimator name, one-line summary, parameters with default, kinds and
help) is read from the model classes once and kept in a cache file keyed by the source files it
came from and the plugins installed, so ``aekit --help``, ``aekit fit --help`` and
``aekit list-models`` answer without importing torch.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._config import Param

__all__ = ["FlagParam", "UsageError", "add_param_flags", "catalog", "check_applies", "fit_settings", "param_table",
           "parse_value", "read_toml", "show"]

RUN_KEYS = ("model", "data", "data_root", "seed", "limit", "out", "threads", "tensorboard")  # besides estimator params in --config
_NOT_FLAGS = ("verbose", "threads")  # set by --quiet and the run-level --threads


class UsageError(Exception):
    """A mistake in the command line or the config file."""


# -- the catalog of families, cached ----------------------------------------------------------


def _source_files() -> list[Path]:
    """The files whose content the catalog depends on: the model families, the settings machinery
    and the plugins' modules (found without importing them)."""
    pkg = Path(__file__).resolve().parent.parent
    files = sorted((pkg / "models").glob("*.py")) + [pkg / "_config.py", pkg / "estimators" / "base.py",
                                                       pkg / "estimators" / "families.py", pkg / "_version.py",
                                                       Path(__file__).resolve()]
    from .._registry import plugin_modules

    for module in plugin_modules():
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        files.append(Path(spec.origin) if spec is not None and spec.origin else Path(f"<missing {module}>"))
    return files


def _cache_path() -> Path | None:
    h = hashlib.sha256()
    for f in _source_files():
        try:
            st = f.stat()
            h.update(f"{f}:{st.st_mtime_ns}:{st.st_size}\n".encode())
        except OSError:
            h.update(f"{f}:missing\n".encode())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aekit" / f"cli-catalog-{h.hexdigest()[:16]}.json"


def _build_catalog() -> dict[str, Any]:
    import inspect

    from .._registry import model_names
    from ..estimators import estimator_class, estimator_params

    families = {}
    for name in model_names():
        cls = estimator_class(name)
        families[name] = {
            "estimator": cls.__name__,
            "summary": _first_sentence(inspect.getdoc(cls) or ""),
            "params": [p.to_dict() for p in estimator_params(name).values()],
        }
    return {"families": families}


def _first_sentence(doc: str) -> str:
    """The docstring's first sentence, whole (it may run over several lines)."""
    para = " ".join(doc.split("\n\n")[0].replace("``", "").split())
    m = re.match(r"(.+?[.!?])(?=\s+[A-Z]|$)", para)
    return m.group(1) if m else para


_CATALOG: dict[str, Any] | None = None


def catalog() -> dict[str, Any]:
    """Family -> {"estimator", "summary", "params"}; from the cache when it is current."""
    global _CATALOG
    if _CATALOG is not None:
        return _CATALOG
    path = _cache_path()
    try:
        _CATALOG = json.loads(path.read_text())
        return _CATALOG
    except (OSError, ValueError):
        pass
    _CATALOG = _build_catalog()
    try:  # a cache is an optimisation: a read-only home just means no cache
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_CATALOG))
        os.replace(tmp, path)
    except OSError:
        pass
    return _CATALOG


# -- parameters as flags ------------------------------------------------------------------------


@dataclass
class FlagParam:
    """An estimator parameter across the families that have it."""

    param: Param  # as the first family that has it declares it (name, kinds, help)
    defaults: dict[str, Any] = field(default_factory=dict)  # family -> default
    helps: dict[str, str] = field(default_factory=dict)  # family -> help, where families describe it apart

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def param_table() -> dict[str, FlagParam]:
    """Every estimator parameter of every family, with its per-family defaults."""
    table: dict[str, FlagParam] = {}
    for family, info in catalog()["families"].items():
        for d in info["params"]:
            p = Param.from_dict(d)
            entry = table.setdefault(p.name, FlagParam(p))
            entry.defaults[family] = p.default
            entry.helps[family] = p.help
    return table


def parse_value(text: str, kinds: tuple[str, ...]):
    """A flag's text as a value of one of the parameter's kinds; ``none`` gives None."""
    t = text.strip()
    low = t.lower()
    if low == "none":
        return None
    if "bool" in kinds and low in ("true", "false"):
        return low == "true"
    tuples = [k for k in kinds if k.startswith("tuple:")]
    scalars = [k for k in kinds if k in ("int", "float")]
    if tuples and ("," in t or t.startswith(("(", "[")) or not scalars):
        return _parse_tuple(text, tuples[0].split(":")[1])
    for kind in scalars:
        try:
            return int(t) if kind == "int" else float(t)
        except ValueError:
            continue
    if "str" in kinds:
        return t
    words = {"int": "an integer", "float": "a number", "bool": "true or false"}
    raise argparse.ArgumentTypeError(
        f"invalid value {text!r}: expected {' or '.join(words.get(k, k) for k in kinds if k != 'none')}"
    )


def _parse_tuple(text: str, kind: str) -> tuple:
    inner = text.strip().strip("()[]").strip()
    if not inner:
        return ()
    try:
        return tuple((int if kind == "int" else float)(v.strip()) for v in inner.split(","))
    except ValueError:
        what = "integers" if kind == "int" else "numbers"
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected comma-separated {what} (e.g. 256,128), or () for none"
        ) from None


def show(v) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v)) if v else "()"
    return "none" if v is None else str(v)


def _flag_help(p: FlagParam, n_families: int) -> str:
    values = {m: show(d) for m, d in p.defaults.items()}
    counts: dict[str, int] = {}
    for v in values.values():
        counts[v] = counts.get(v, 0) + 1
    usual = max(counts, key=counts.get)
    default = f"default: {usual}" + "".join(f"; {m}: {v}" for m, v in values.items() if v != usual)
    families = "" if len(values) == n_families else f" [{', '.join(values)}]"
    helps = dict.fromkeys(h for h in p.helps.values() if h)
    if len(helps) > 1:  # one name, different meanings per family: say each
        by_help: dict[str, list[str]] = {}
        for fam, h in p.helps.items():
            by_help.setdefault(h, []).append(fam)
        help_text = "; ".join(f"{', '.join(fams)}: {h}" for h, fams in by_help.items())
        families = ""
    else:
        help_text = next(iter(helps), "")
    text = f"{help_text} ({default}){families}" if help_text else f"({default}){families}"
    return text.replace("%", "%%")


def _metavar(kinds: tuple[str, ...]) -> str:
    if any(k.startswith("tuple:") for k in kinds) and not any(k in ("int", "float") for k in kinds):
        return "N,N,..."
    return {"int": "N", "float": "X"}.get(next((k for k in kinds if k != "none"), ""), "VALUE")


def add_param_flags(parser: argparse.ArgumentParser, table: dict[str, FlagParam]) -> None:
    n_families = len(catalog()["families"])
    group = parser.add_argument_group(
        "model parameters",
        "every estimator parameter, as --kebab-case; lists as comma lists (256,128), () for an empty "
        "list, none for None. Models a parameter belongs to are in [brackets] when not all.",
    )
    for p in table.values():
        if p.name in _NOT_FLAGS:
            continue
        kinds = p.param.kinds

        def parse(text, kinds=kinds):
            return parse_value(text, kinds)

        parse.__name__ = p.name  # argparse names the type in its error message
        kw: dict[str, Any] = {"dest": p.name, "default": argparse.SUPPRESS, "help": _flag_help(p, n_families)}
        if p.name == "random_state":
            group.add_argument("--seed", "--random-state", type=parse, metavar="N",
                               **{**kw, "help": "seeds initialisation, shuffling and noise (default: 0, so runs repeat)"})
        elif p.param.is_bool:
            group.add_argument(p.flag, action=argparse.BooleanOptionalAction, **kw)
        else:
            group.add_argument(p.flag, type=parse, metavar=_metavar(kinds), **kw)


# -- settings: config file + flags ------------------------------------------------------------


def read_toml(path: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise UsageError("--config needs Python 3.11, or `pip install tomli` on 3.10") from None
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"{path}: not valid TOML ({e})") from None


def _config_settings(path: str, table: dict[str, FlagParam]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run settings, estimator params) from a TOML file; values typed like the flags' values."""
    run, params = {}, {}
    for key, value in read_toml(path).items():
        name = key.replace("-", "_")
        if name in RUN_KEYS:
            run[name] = value
        elif name == "random_state":
            run["seed"] = value
        elif name in table and name not in _NOT_FLAGS:
            p = table[name].param
            if isinstance(value, str):
                try:
                    value = parse_value(value, p.kinds)
                except argparse.ArgumentTypeError as e:
                    raise UsageError(f"{path}: {key}: {e}") from None
            params[name] = p.coerce(value)
        else:
            raise UsageError(f"{path}: unknown setting {key!r}")
    return run, params


def fit_settings(args, table: dict[str, FlagParam]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run settings and estimator params: --config, then the flags over it."""
    run: dict[str, Any] = {}
    params: dict[str, Any] = {}
    if args.config:
        run, params = _config_settings(args.config, table)
    for key in ("model", "data", "data_root", "limit", "out", "threads", "tensorboard"):
        if getattr(args, key, None) is not None:
            run[key] = getattr(args, key)
    for name in table:
        if hasattr(args, name) and name not in _NOT_FLAGS:
            if name == "random_state":
                run["seed"] = getattr(args, name)
            else:
                params[name] = getattr(args, name)
    return run, params


def check_applies(model: str, params: dict[str, Any], table: dict[str, FlagParam]) -> None:
    for name in params:
        if model not in table[name].defaults:
            takes = ", ".join(table[name].defaults)
            raise UsageError(f"{table[name].flag} does not apply to model {model!r} (it is a parameter of {takes})")
