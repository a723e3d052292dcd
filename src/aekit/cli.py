"""The ``aekit`` command line: parses arguments, calls the library (``aekit.run``,
``aekit.report``), prints. Every command is a Python call too::

    aekit fit --model vae --latent-dim 2 --out runs/vae   ->  aekit.run.fit_run("runs/vae", "vae", params={"latent_dim": 2})
    aekit demo                                            ->  aekit.run.demo()
    aekit report runs/vae                                 ->  aekit.report.build_report("runs/vae")

Estimator parameters become kebab-case flags generated from the estimators' signatures and
defaults (``--latent-dim 2``, ``--hidden-dims 256,128``, ``--activation none``,
``--early-stopping/--no-early-stopping``); their help comes from the estimators' docstrings.
User errors print one line, ``aekit: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2
# Run settings a --config file may hold besides estimator parameters.
RUN_KEYS = ("model", "data", "seed", "limit", "out", "threads")
# Estimator parameters the CLI sets itself: verbose is --quiet's opposite; random_state is --seed.
_NOT_FLAGS = ("verbose",)


class UsageError(Exception):
    """A mistake in the command line or the config file."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (raised, so ``main`` reports them like library errors)."""

    def error(self, message: str):
        raise UsageError(message)


# -- estimator parameters as flags --------------------------------------------------------------


@dataclass
class _Param:
    name: str
    default: Any  # the first family's default (the type comes from it)
    defaults: dict[str, Any] = field(default_factory=dict)  # model name -> default
    help: str = ""
    kind: str = ""  # the type, as the docstring says it

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _families() -> dict[str, type]:
    """Registry name -> estimator class, in registry order."""
    from .estimators import ESTIMATORS

    return {cls._model: cls for cls in ESTIMATORS.values()}


def _signature_defaults(cls) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(cls).parameters.values() if p.default is not inspect.Parameter.empty}


def _param_table() -> dict[str, _Param]:
    """Every estimator parameter of every family (common ones first), with per-family defaults."""
    table: dict[str, _Param] = {}
    docs: dict[str, tuple[str, str]] = {}
    for model, cls in _families().items():
        for name, text in _param_docs(cls).items():
            docs.setdefault(name, text)
        for name, default in _signature_defaults(cls).items():
            if name in _NOT_FLAGS:
                continue
            p = table.setdefault(name, _Param(name, default))
            p.defaults[model] = default
    for p in table.values():
        p.help, p.kind = docs.get(p.name, ("", ""))
        p.help = p.help or _FALLBACK_HELP.get(p.name, "")
    return table


# Short help for parameters the estimator docstrings mention only in passing.
_FALLBACK_HELP = {
    "sparsity_weight": "weight of the sparsity penalty",
    "k": "code units kept by sparsity='topk'",
    "contractive_weight": "weight of the contractive penalty ||d code / d x||_F^2",
    "lower_latent_dims": "sizes of the stochastic layers below the top one, bottom first",
    "codebook_size": "number of codebook entries",
    "embedding_dim": "size of each code vector; latent_dim must be a multiple of it",
    "commitment_weight": "weight of the commitment loss ||z_e - sg[e]||^2",
    "ema": "update the codebook by exponential moving averages instead of a codebook loss",
}

_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s+:\s*(.*)$")
_TYPE = re.compile(r"^(\{[^}]*\}|(?:tuple of int|int|float|str|bool|None)(?: or (?:tuple of int|int|float|str|bool|None))*)[,\s]*")


def _param_docs(cls) -> dict[str, tuple[str, str]]:
    """Parameter help from an estimator's docstring: numpydoc ``name : type, default=x`` entries
    (with their indented description) and, where a family describes its parameters in prose,
    ``\\`\\`name\\`\\` (text)``. Returns name -> (description, type)."""
    doc = inspect.cleandoc(cls.__doc__ or "").split("\nExamples\n")[0].replace("``", "")
    entries: dict[str, list[str]] = {}
    current: list[str] = []
    for line in doc.splitlines():
        if line and not line[0].isspace():
            current = []
            for part in re.split(r";\s+(?=\w+ : )", line):
                m = _ENTRY.match(part.strip())
                if m:
                    current = [n.strip() for n in m.group(1).split(",")]
                    for n in current:
                        entries[n] = [m.group(2)]
        elif line.strip() and current:
            for n in current:
                entries[n].append(line.strip())
    out = {name: _describe(lines[0], " ".join(lines[1:]), typed=True) for name, lines in entries.items()}
    raw = inspect.cleandoc(cls.__doc__ or "")
    for m in re.finditer(r"``(\w+)``\s*\(", raw):
        depth, i = 1, m.end()
        while i < len(raw) and depth:
            depth += {"(": 1, ")": -1}.get(raw[i], 0)
            i += 1
        out.setdefault(m.group(1), _describe(raw[m.end() : i - 1].replace("``", ""), "", typed=False))
    return {k: v for k, v in out.items() if any(v)}


def _describe(head: str, body: str, typed: bool) -> tuple[str, str]:
    """(description, type) from ``int, default=16`` + body; defaults are shown per family instead."""
    head = re.sub(r",?\s*default\s*[= ]\s*(\"[^\"]*\"|\([^)]*\)|[^\s,;()]+)", "", head).strip()
    m = _TYPE.match(head) if typed else None
    kind = m.group(1) if m else ""
    text = " ".join(f"{head[m.end():] if m else head} {body}".split()).strip(" ;,.")
    if re.fullmatch(r"\(.*\)", text):  # only a parenthesised note: "(beta-VAE)"
        text = text[1:-1]
    if re.fullmatch(r"[\d.]*", text):  # only a number: the default, shown anyway
        text = ""
    return text, kind


def _parse_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _parse_tuple(text: str) -> tuple:
    inner = text.strip().strip("()[]").strip()
    if not inner:
        return ()
    try:
        return tuple(_parse_number(v.strip()) for v in inner.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected comma-separated numbers (e.g. 256,128), or () for none"
        ) from None


def _value_parser(p: _Param):
    """str -> value, typed by the parameter's default; ``none`` gives None for every parameter."""
    default = p.default

    def parse(text: str):
        t = text.strip()
        if t.lower() == "none":
            return None
        if isinstance(default, tuple):
            return _parse_tuple(t)
        if isinstance(default, bool) or (isinstance(default, str) and t.lower() in ("true", "false")):
            if t.lower() not in ("true", "false"):
                raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected true or false")
            return t.lower() == "true"
        if isinstance(default, (int, float)) or default is None:
            if "," in t or t.startswith("("):
                return _parse_tuple(t)
            try:
                number = _parse_number(t)
            except ValueError:
                if default is None:
                    return t
                kind = "an integer" if isinstance(default, int) else "a number"
                raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {kind}") from None
            if isinstance(default, int) and not isinstance(number, int):
                raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected an integer")
            return number
        return t

    parse.__name__ = p.name
    return parse


def _metavar(default) -> str:
    if isinstance(default, tuple):
        return "N,N,..."
    if isinstance(default, int):
        return "N"
    if isinstance(default, float):
        return "X"
    return "VALUE"


def _show(v) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v)) if v else "()"
    return "none" if v is None else str(v)


def _flag_help(p: _Param, n_models: int) -> str:
    values = {m: _show(d) for m, d in p.defaults.items()}
    counts: dict[str, int] = {}
    for v in values.values():
        counts[v] = counts.get(v, 0) + 1
    usual = max(counts, key=counts.get)
    default = f"default: {usual}" + "".join(f"; {m}: {v}" for m, v in values.items() if v != usual)
    models = "" if len(values) == n_models else f" [{', '.join(values)}]"
    paren = ", ".join(x for x in (p.kind, default) if x)
    text = f"{p.help} ({paren}){models}" if p.help else f"({paren}){models}"
    return text.replace("%", "%%")


def _add_param_flags(parser: argparse.ArgumentParser, table: dict[str, _Param]) -> None:
    n_models = len(_families())
    group = parser.add_argument_group(
        "model parameters",
        "every estimator parameter, as --kebab-case; lists as comma lists (256,128), () for an empty "
        "list, none for None. Models a parameter belongs to are in [brackets] when not all.",
    )
    for p in table.values():
        kw: dict[str, Any] = {"dest": p.name, "default": argparse.SUPPRESS, "help": _flag_help(p, n_models)}
        if p.name == "random_state":
            group.add_argument("--seed", "--random-state", type=_value_parser(p), metavar="N",
                               **{**kw, "help": "seeds initialisation, shuffling and noise (default: 0, so runs repeat)"})
        elif isinstance(p.default, bool):
            group.add_argument(p.flag, action=argparse.BooleanOptionalAction, **kw)
        else:
            group.add_argument(p.flag, type=_value_parser(p), metavar=_metavar(p.default), **kw)


# -- the parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``aekit`` argument parser (flags generated from the estimators)."""
    from .apps._common import estimator_names

    parser = _Parser(
        prog="aekit",
        description="Train, evaluate and explore autoencoders. `aekit demo` trains a small VAE and writes a report.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = sub.add_parser(
        "fit", help="train a model into a run folder",
        description="Train a model; the run folder is written as training goes (checkpoint and history.csv "
                    "every epoch; model.safetensors, config.json, metrics.json and report.html at the end).",
    )
    fit.add_argument("--data", help="digits (default), mnist, fashion-mnist, binarized-mnist, or a path to a .npy, .npz, "
                     ".csv file or a folder of images")
    fit.add_argument("--model", choices=estimator_names(), metavar="NAME",
                     help=f"model family: {', '.join(estimator_names())}")
    fit.add_argument("--out", metavar="RUN_DIR", help="run folder to write")
    fit.add_argument("--config", metavar="FILE", help="TOML file of settings (the flags' names, snake_case or "
                     "kebab-case, plus model, data, seed, limit, out); flags override it")
    fit.add_argument("--limit", type=_positive_int, metavar="N",
                     help="use only the first N samples of the training and of the evaluation data")
    fit.add_argument("--resume", action="store_true", help="continue the interrupted run in --out from its checkpoint, "
                     "with the settings in its config.json (flags override them, e.g. more --epochs)")
    fit.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    fit.add_argument("--threads", type=_positive_int, metavar="N",
                     help="CPU threads for torch (default: torch's choice; 1 is fastest for small models)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _add_param_flags(fit, _param_table())
    fit.set_defaults(func=_cmd_fit)

    demo = sub.add_parser("demo", help="train a 2-D VAE on the embedded digits and write a report",
                          description="Train a VAE with a 2-D code on the embedded digits (well under a minute "
                          "on two CPU cores), evaluate it and write the run folder with report.html.")
    demo.add_argument("--out", default="runs/demo", metavar="RUN_DIR", help="run folder (default: runs/demo)")
    demo.add_argument("--epochs", type=_positive_int, metavar="N", help="epochs (default: the demo's 100)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    demo.set_defaults(func=_cmd_demo)

    rep = sub.add_parser("report", help="(re)build a run folder's report.html")
    rep.add_argument("run_dir", metavar="RUN_DIR")
    rep.set_defaults(func=_cmd_report)

    enc = sub.add_parser("encode", help="write the codes of a dataset under a run's model")
    enc.add_argument("run_dir", metavar="RUN_DIR")
    enc.add_argument("data", metavar="DATA", help="a dataset name or a path, as for fit --data")
    enc.add_argument("-o", "--output", required=True, metavar="FILE", help="codes file: .npy, or .csv")
    enc.add_argument("--split", default="all", choices=("train", "test", "all"), help="built-in datasets' split (default: all)")
    enc.add_argument("--limit", type=_positive_int, metavar="N", help="encode only the first N samples")
    enc.set_defaults(func=_cmd_encode)

    gen = sub.add_parser("generate", help="draw samples from a run's generative model")
    gen.add_argument("run_dir", metavar="RUN_DIR")
    gen.add_argument("-n", type=_positive_int, default=64, metavar="N",
                     help="number of samples (per class for cvae; default: 64)")
    gen.add_argument("-o", "--output", required=True, metavar="FILE", help="an image grid (.png) or the array (.npy)")
    gen.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the prior draws (default: 0)")
    gen.add_argument("--label", help="cvae: the class to draw (default: every class, one per row)")
    gen.set_defaults(func=_cmd_generate)

    info = sub.add_parser("info", help="print a run's settings and final metrics")
    info.add_argument("run_dir", metavar="RUN_DIR")
    info.add_argument("--json", action="store_true", help="print config and metrics as JSON")
    info.set_defaults(func=_cmd_info)

    lm = sub.add_parser("list-models", help="list the model families and their estimators")
    lm.set_defaults(func=_cmd_list_models)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a positive integer")
    return value


# -- settings: config file + flags ------------------------------------------------------------


def _read_toml(path: str) -> dict[str, Any]:
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


def _config_settings(path: str, table: dict[str, _Param]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run settings, estimator params) from a TOML file; values typed like the flags' values."""
    run, params = {}, {}
    for key, value in _read_toml(path).items():
        name = key.replace("-", "_")
        if name in RUN_KEYS:
            run[name] = value
        elif name in ("random_state",):
            run["seed"] = value
        elif name in table:
            params[name] = _typed(table[name], value, f"{path}: {key}")
        else:
            raise UsageError(f"{path}: unknown setting {key!r}")
    return run, params


def _typed(p: _Param, value, where: str):
    if isinstance(value, str):
        try:
            return _value_parser(p)(value)
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"{where}: {e}") from None
    if isinstance(value, list):
        return tuple(value)
    return value


def _fit_settings(args, table: dict[str, _Param]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run settings and estimator params: config.json of the run (--resume), then --config, then flags."""
    run: dict[str, Any] = {}
    params: dict[str, Any] = {}
    if args.config:
        run, params = _config_settings(args.config, table)
    for key in ("model", "data", "limit", "out", "threads"):
        if getattr(args, key) is not None:
            run[key] = getattr(args, key)
    for name in table:
        if hasattr(args, name):
            (run if name == "random_state" else params)[name if name != "random_state" else "seed"] = getattr(args, name)
    return run, params


def _check_applies(model: str, params: dict[str, Any], table: dict[str, _Param]) -> None:
    for name in params:
        if model not in table[name].defaults:
            takes = ", ".join(table[name].defaults)
            raise UsageError(f"{table[name].flag} does not apply to model {model!r} (it is a parameter of {takes})")


# -- commands -------------------------------------------------------------------------------------


def _cmd_fit(args) -> int:
    from . import run as runlib

    table = _param_table()
    run, params = _fit_settings(args, table)
    out = run.pop("out", None)
    if not out:
        raise UsageError("fit needs --out RUN_DIR (the run folder to write)")
    progress = not args.quiet
    if args.resume:
        model = run.get("model") or runlib.read_run(out)["config"]["model"]
        _check_applies(model, params, table)
        result = runlib.resume_run(out, progress=progress, **run, **params)
    else:
        model = run.get("model")
        if not model:
            raise UsageError(f"fit needs --model NAME (one of {', '.join(_families())})")
        if model not in _families():
            raise UsageError(f"unknown model {model!r}; choose one of {', '.join(_families())}")
        _check_applies(model, params, table)
        result = runlib.fit_run(
            out, model, run.get("data", "digits"), params, seed=run.get("seed", 0), limit=run.get("limit"),
            overwrite=args.overwrite, progress=progress, threads=run.get("threads"),
        )
    _summary(result, args.quiet)
    return 0


def _cmd_demo(args) -> int:
    from .run import demo

    result = demo(args.out, epochs=args.epochs, progress=not args.quiet)
    _summary(result, args.quiet)
    return 0


def _summary(result, quiet: bool) -> None:
    if not quiet:
        m = result.metrics
        parts = [f"recon MSE {m['recon_mse']:.4g}", f"PSNR {m['psnr']:.2f} dB"]
        if "elbo" in m:
            parts.append(f"ELBO {m['elbo']:.2f} nats")
            parts.append(f"{m['active_units']}/{m['latent_dim']} active units")
        if "codebook_usage" in m:
            parts.append(f"codebook {100 * m['codebook_usage']:.0f}% used")
        print(f"metrics on {m['eval_data']}: " + ", ".join(parts))
        if m.get("inactive_dims"):
            print(f"warning: posterior collapse in latent dimensions {m['inactive_dims']} (KL < 0.01 nats)")
        print(f"run folder: {result.run_dir}")
    print(f"report: {result.report.resolve().as_uri()}")


def _cmd_report(args) -> int:
    from .report import build_report

    print(f"report: {build_report(args.run_dir).resolve().as_uri()}")
    return 0


def _cmd_encode(args) -> int:
    from .run import encode_run

    out = Path(args.output)
    if out.suffix.lower() not in (".npy", ".csv"):
        raise UsageError(f"{out}: codes are written as .npy or .csv")
    Z = encode_run(args.run_dir, args.data, split=args.split, limit=args.limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, Z)
    else:
        np.savetxt(out, Z, delimiter=",", fmt="%.7g", header=",".join(f"z{i}" for i in range(Z.shape[1])), comments="")
    print(f"wrote {Z.shape[0]} codes of size {Z.shape[1]} to {out}")
    return 0


def _cmd_generate(args) -> int:
    from .apps import image_grid
    from .run import generate_run

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"{out}: samples are written as an image grid (.png) or an array (.npy)")
    label = args.label
    if label is not None:
        try:
            label = int(label)
        except ValueError:
            pass
    S = generate_run(args.run_dir, args.n, seed=args.seed, label=label)
    if out.suffix.lower() == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, S)
    else:
        if S.ndim < 3:
            raise UsageError("a .png grid needs image data; this model was trained on tabular data: use .npy")
        per_row = args.n if len(S) > args.n else math.ceil(math.sqrt(len(S)))
        image_grid(S, out, ncols=per_row)
    print(f"wrote {len(S)} samples to {out}")
    return 0


def _cmd_info(args) -> int:
    from .run import read_run

    run = read_run(args.run_dir)
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    c, m = run["config"], run["metrics"]
    print(f"run: {args.run_dir} ({c.get('status')})")
    print(f"model: {c['estimator']} ({c['model']})   data: {c['data']}   seed: {c['seed']}   limit: {c.get('limit')}")
    print(f"trained on {c['n_train']} samples; evaluated on {c['eval_data']}")
    print("settings:")
    for k, v in c["params"].items():
        print(f"  {k} = {_show(tuple(v) if isinstance(v, list) else v)}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in c.get("versions", {}).items()))
    if m is None:
        print("metrics: none yet (the run has not finished)")
        return 0
    print(f"metrics ({m.get('epochs_trained')} epochs):")
    for k, v in m.items():
        if k in ("eval_data", "posterior_collapse_message") or v in ("", None):
            continue
        if k == "final":
            v = ", ".join(f"{a}={b:.4g}" for a, b in v.items())
        elif isinstance(v, float):
            v = f"{v:.6g}"
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v) + "]"
        print(f"  {k} = {v}")
    return 0


def _cmd_list_models(args) -> int:
    for model, cls in _families().items():
        summary = (inspect.getdoc(cls) or "").splitlines()[0]
        print(f"{model:<12} {cls.__name__:<24} {summary}")
    return 0


# -- entry point ------------------------------------------------------------------------------------


def _error(message: str) -> int:
    print(f"aekit: error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for user errors, 130 when interrupted)."""
    from .train import NonFiniteLossError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as e:
        return _error(str(e))
    except (ValueError, TypeError, OSError, NonFiniteLossError) as e:
        return _error(str(e) or type(e).__name__)
    except KeyboardInterrupt as e:
        print(f"aekit: {' '.join(str(e).split()) or 'interrupted'}", file=sys.stderr)
        return 130
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
