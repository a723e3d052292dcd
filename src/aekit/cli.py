"""The ``aekit`` command line: parses arguments, calls the library (``aekit.run``,
``aekit.report``), prints. Every command is a Python call too::

    aekit fit --model vae --latent-dim 2 --out runs/vae   ->  aekit.run.fit_run("runs/vae", "vae", params={"latent_dim": 2})
    aekit demo                                            ->  aekit.run.demo()
    aekit report runs/vae                                 ->  aekit.report.build_report("runs/vae")
    aekit evaluate runs/vae --data digits --nll-samples 100
                                  ->  aekit.run.evaluate_run("runs/vae", "digits", "test", nll_samples=100)
    aekit denoise runs/dae digits -o out.npy --noise gaussian
                                  ->  aekit.run.denoise_run("runs/dae", "digits", noise="gaussian")
    aekit detect runs/vae data.npy -o scores.csv          ->  aekit.run.detect_run("runs/vae", "data.npy")
    aekit impute runs/vae holes.npy -o filled.npy         ->  aekit.run.impute_run("runs/vae", "holes.npy")
    aekit compress runs/vae digits -o d.aek --bits 6      ->  aekit.run.compress_run("runs/vae", "digits", "d.aek", bits=6)
    aekit decompress runs/vae d.aek -o d.npy              ->  aekit.run.decompress_run("runs/vae", "d.aek")
    aekit search runs/vae --data digits --index 3 -k 5    ->  aekit.run.search_run("runs/vae", "digits", index=3, k=5)
    aekit interpolate runs/vae digits --a 0 --b 1 -o i.png
                                  ->  aekit.run.interpolate_run("runs/vae", "digits", 0, 1)
    aekit compare-pca runs/vae digits -o c.png            ->  aekit.run.compare_pca_run("runs/vae", "digits", "c.png")

Estimator parameters become kebab-case flags generated from the estimators' signatures and
defaults (``--latent-dim 2``, ``--hidden-dims 256,128``, ``--activation none``,
``--early-stopping/--no-early-stopping``); their help comes from the estimators' docstrings.
User errors print one line, ``aekit: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
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
    """Model family name -> estimator class."""
    from .estimators import FAMILIES

    return FAMILIES


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
    "k": "sparse: code units kept by sparsity='topk'; iwae: importance samples per data point in the training bound",
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
    _add_app_commands(sub)
    return parser


_DATA_HELP = "a dataset name (digits, mnist, fashion-mnist, binarized-mnist) or a path to a .npy, .npz, .csv file or a folder of images"


def _app_parser(sub, name: str, help: str, description: str, *, data: str | None = "positional", split: str = "all"):
    """A subcommand over a run's model: RUN_DIR, then DATA (``data``: "positional", "option" for
    --data, or None for none) with --split and --limit, and --threads."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (written by aekit fit)")
    if data == "positional":
        p.add_argument("data", metavar="DATA", help=_DATA_HELP)
    elif data == "option":
        p.add_argument("--data", required=True, metavar="DATA", help=_DATA_HELP)
    if data:
        p.add_argument("--split", default=split, choices=("train", "test", "all"),
                       help=f"which split of a built-in dataset DATA (default: {split}); user files have train and all")
        p.add_argument("--limit", type=_positive_int, metavar="N", help="use only the first N samples of DATA")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="CPU threads for torch (default: torch's choice; 1 is fastest for small models)")
    return p


def _add_app_commands(sub) -> None:
    """The evaluation and application commands (each a function of ``aekit.run``)."""
    ev = _app_parser(sub, "evaluate", "evaluate a run's model on a dataset (writes evaluation.json)",
                     "Evaluate a run's model on DATA: reconstruction error and PSNR; for VAEs the ELBO, KL per "
                     "latent dimension, active units and, with --nll-samples K, the importance-weighted NLL "
                     "(Burda et al. 2016; an upper bound on the true NLL that tightens as K grows). Prints a table "
                     "and writes RUN_DIR/evaluation.json.", data="option", split="test")
    ev.add_argument("--nll-samples", type=_count, default=0, metavar="K",
                    help="importance samples per data point for the NLL (variational models; 0 skips it, the "
                         "default; costs K decoder passes per sample; shows a progress bar)")
    ev.set_defaults(func=_cmd_evaluate)

    dn = _app_parser(sub, "denoise", "denoise data with a run's model",
                     "Write the run model's reconstruction of DATA, its clean estimate (best with a run of the "
                     "denoising model). With --noise, DATA is taken as clean: noise is added first and the PSNR "
                     "of the noisy and of the denoised samples is printed. Data in [0, 1] stay clipped to [0, 1].")
    dn.add_argument("-o", "--output", required=True, metavar="FILE",
                    help="denoised samples as .npy; .npz (arrays denoised, noisy and, with --noise, clean); or "
                         ".png, a grid of the first -n samples: clean (with --noise), noisy and denoised rows")
    dn.add_argument("--noise", choices=_NOISES, help="add this noise to DATA first: gaussian (--noise-level is its "
                    "std), masking (fraction of values set to 0) or salt_and_pepper (fraction set to 0 or 1)")
    dn.add_argument("--noise-level", type=_nonnegative_float, default=0.3, metavar="X",
                    help="std of gaussian noise, or the fraction of values hit (default: 0.3)")
    dn.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the noise (default: 0)")
    dn.add_argument("-n", type=_positive_int, default=8, metavar="N", help="samples shown in a .png (default: 8)")
    dn.set_defaults(func=_cmd_denoise)

    de = _app_parser(sub, "detect", "score samples for anomalies with a run's model",
                     "Score every sample of DATA with the run's model (AnomalyDetector over it: minus the mean "
                     "squared reconstruction error per value, or the ELBO; higher is more normal) and flag as "
                     "outliers the samples scoring below the threshold.")
    de.add_argument("-o", "--output", metavar="FILE", help="write a CSV with columns index, score, is_outlier (1 or 0)")
    cut = de.add_mutually_exclusive_group()
    cut.add_argument("--contamination", type=_fraction, default=0.1, metavar="X",
                     help="expected fraction of outliers in DATA, in (0, 0.5]: the threshold is this quantile of "
                          "DATA's scores (default: 0.1)")
    cut.add_argument("--threshold", type=_finite_float, metavar="T", help="a fixed score threshold instead")
    de.add_argument("--scoring", choices=("reconstruction", "elbo"), default="reconstruction",
                    help="reconstruction (default) or elbo (variational models)")
    de.set_defaults(func=_cmd_detect)

    im = _app_parser(sub, "impute", "fill the missing values (NaN) of data with a run's model",
                     "Fill the NaNs of DATA with the run's model (AutoencoderImputer over it): start from each "
                     "feature's observed mean, then repeat 'reconstruct, overwrite the missing values'. Observed "
                     "values are written unchanged.")
    im.add_argument("-o", "--output", required=True, metavar="FILE", help="the filled data: .npy, or .csv for tables")
    im.add_argument("--n-iter", type=_positive_int, default=10, metavar="N",
                    help="reconstruct-and-replace rounds, or the chain length for --strategy sample (default: 10)")
    im.add_argument("--strategy", choices=("reconstruct", "sample"), default="reconstruct",
                    help="reconstruct (default), or sample: Metropolis-within-Gibbs (Mattei & Frellsen 2018; vae only)")
    im.add_argument("--seed", type=int, default=0, metavar="N", help="seeds --strategy sample (default: 0)")
    im.set_defaults(func=_cmd_impute)

    co = _app_parser(sub, "compress", "compress data into a file with a run's model as codec",
                     "Compress DATA: encode with the run's model, quantise each code dimension uniformly to "
                     "--bits bits and range-code the symbols. The codec's tables (ranges and frequencies) are "
                     "fitted once on the run's training data and kept in RUN_DIR (codec-<bits>bit-<hash>.npz); a "
                     "file holds only the stream, so `aekit decompress RUN_DIR FILE` reads it back. Prints the "
                     "size, bits per sample and the PSNR of the decompressed data.")
    co.add_argument("-o", "--output", required=True, metavar="FILE", help="the compressed file (e.g. data.aek)")
    co.add_argument("--bits", type=_positive_int, default=8, metavar="B",
                    help="quantisation bits per code dimension, 1 to 12 (default: 8)")
    co.set_defaults(func=_cmd_compress)

    dc = _app_parser(sub, "decompress", "read back a file written by compress",
                     "Decompress FILE, written by `aekit compress` with the same RUN_DIR.", data=None)
    dc.add_argument("file", metavar="FILE", help="a file written by aekit compress")
    dc.add_argument("-o", "--output", required=True, metavar="OUT", help="the samples as .npy, or a .png grid of images")
    dc.set_defaults(func=_cmd_decompress)

    se = _app_parser(sub, "search", "find the nearest neighbours of samples in a run's code space",
                     "Index DATA by its codes under the run's model and print the -k nearest samples of each "
                     "query (index, distance, label when DATA has labels).", data="option")
    se.add_argument("query", metavar="QUERY", nargs="?",
                    help="samples to look up: a dataset name or path (all of it); or use --index")
    se.add_argument("--index", type=int, metavar="I", help="query with the I-th sample of DATA instead of QUERY")
    se.add_argument("-k", type=_positive_int, default=10, metavar="K", help="neighbours per query (default: 10)")
    se.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                    help="distance between codes: euclidean (default) or cosine (1 - cosine similarity)")
    se.add_argument("-o", "--output", metavar="FILE", help="write a CSV with columns query, rank, index, distance[, label]")
    se.set_defaults(func=_cmd_search)

    ip = _app_parser(sub, "interpolate", "decode the path between the codes of two samples",
                     "Encode samples --a and --b of DATA, walk between their codes in --steps points (endpoints "
                     "included) and decode each point.")
    ip.add_argument("--a", type=int, required=True, metavar="I", help="index of the first sample in DATA")
    ip.add_argument("--b", type=int, required=True, metavar="J", help="index of the last sample in DATA")
    ip.add_argument("--steps", type=_at_least_two, default=8, metavar="N", help="points on the path, at least 2 (default: 8)")
    ip.add_argument("--method", choices=("linear", "slerp"), default="linear",
                    help="linear (default), or slerp: along the great circle, the norm moving linearly")
    ip.add_argument("-o", "--output", required=True, metavar="FILE", help="a .png row of images, or the array as .npy")
    ip.set_defaults(func=_cmd_interpolate)

    cp = _app_parser(sub, "compare-pca", "plot a run's 2-D code next to PCA's and compare their errors",
                     "Plot the run's code of DATA (its first two principal components when wider than 2) next to "
                     "PCA's 2-D projection, coloured by label, and print the reconstruction error of the model and "
                     "of a PCA with as many components as the code, fitted on the run's training data.")
    cp.add_argument("-o", "--output", required=True, metavar="FILE", help="the plot (.png)")
    cp.set_defaults(func=_cmd_compare_pca)


_NOISES = ("gaussian", "masking", "salt_and_pepper")


def _int_at_least(minimum: int, words: str):
    """An argparse type: an integer >= ``minimum`` (``words`` names it in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {words}")
        return value

    return parse


_count = _int_at_least(0, "an integer >= 0")
_at_least_two = _int_at_least(2, "an integer >= 2")
_positive_int = _int_at_least(1, "a positive integer")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number")
    return value


def _nonnegative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number >= 0")
    return value


def _fraction(text: str) -> float:
    value = _finite_float(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a fraction in (0, 0.5]")
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
    if result.metrics is None:  # a non-zero torchrun rank: rank 0 reports
        return
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

    out = _output(args.output, (".npy", ".csv"), "codes")
    Z = encode_run(args.run_dir, args.data, split=args.split, limit=args.limit)
    _save_array(out, Z, column="z")
    print(f"wrote {Z.shape[0]} codes of size {Z.shape[1]} to {out}")
    return 0


def _cmd_generate(args) -> int:
    from .run import generate_run

    out = _output(args.output, (".png", ".npy"), "samples")
    label = args.label
    if label is not None:
        try:
            label = int(label)
        except ValueError:
            pass
    S = generate_run(args.run_dir, args.n, seed=args.seed, label=label)
    if out.suffix.lower() == ".npy":
        _save_array(out, S)
    else:
        _save_grid(out, S, ncols=args.n if len(S) > args.n else math.ceil(math.sqrt(len(S))))
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


# -- output files ---------------------------------------------------------------------------------


def _output(path: str, suffixes: tuple[str, ...], what: str) -> Path:
    """The output path, its suffix checked before any work is done."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise UsageError(f"{out}: {what} are written as {' or '.join(suffixes)}")
    return out


def _save_array(out: Path, A: np.ndarray, column: str = "x") -> None:
    """``A`` as .npy, or as .csv with a header ``x0,x1,...`` when it is a table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, A)
        return
    if A.ndim != 2:
        raise UsageError(f"{out}: a .csv holds a table, but these samples are shaped {A.shape[1:]}; use .npy")
    np.savetxt(out, A, delimiter=",", fmt="%.7g", header=",".join(f"{column}{i}" for i in range(A.shape[1])), comments="")


def _save_grid(out: Path, S: np.ndarray, ncols: int) -> None:
    from .apps import image_grid

    if S.ndim < 3:
        raise UsageError(f"{out}: a .png grid needs image data; this model was trained on tabular data: use .npy")
    image_grid(S, out, ncols=ncols)


def _write_csv(out: Path, header: list[str], rows) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


@contextlib.contextmanager
def _working(message: str):
    """A spinner on stderr while a step that may be long runs (on a terminal only)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


# -- application commands ---------------------------------------------------------------------------


def _cmd_evaluate(args) -> int:
    from .run import evaluate_run

    if args.nll_samples:  # long: a progress bar with the time remaining instead of a spinner
        r = evaluate_run(args.run_dir, args.data, split=args.split, nll_samples=args.nll_samples, limit=args.limit,
                         progress=True)
    else:
        with _working(f"evaluating on {args.data}..."):
            r = evaluate_run(args.run_dir, args.data, split=args.split, limit=args.limit)
    print(f"evaluation of {args.run_dir} on {args.data} ({args.split}, {r['n_samples']} samples)")
    rows = [("recon_mse", f"{r['recon_mse']:.6g}", "per value"), ("psnr", f"{r['psnr']:.2f}", "dB")]
    if "recon_bce" in r:
        rows.append(("recon_bce", f"{r['recon_bce']:.4f}", "nats per sample"))
    if "elbo" in r:
        rows.append(("elbo", f"{r['elbo']:.4f}", "nats per sample (higher is better)"))
    if "nll" in r:
        rows.append(("nll", f"{r['nll']:.4f}", f"nats per sample (K={r['nll_samples']}; an upper bound, <= -elbo)"))
    if "kl_per_dim" in r:
        rows.append(("kl_total", f"{r['kl_total']:.4f}", "nats per sample, every stochastic layer"))
        rows.append(("kl_per_dim", " ".join(f"{v:.3g}" for v in r["kl_per_dim"]), "nats"))
        rows.append(("active_units", f"{r['active_units']}/{r['latent_dim']}", "Cov_x(E_q[z]) > 0.01"))
    for i, level in enumerate(r.get("levels", ())):  # hierarchical models, bottom first
        rows.append((f"layer {i + 1}", f"{level['kl']:.4f}", f"nats of KL; {level['active_units']}/{level['latent_dim']} active units"))
    if "codebook_usage" in r:
        rows.append(("codebook_usage", f"{100 * r['codebook_usage']:.1f}%", f"perplexity {r['perplexity']:.2f}"))
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    for name, value, unit in rows:
        print(f"  {name:<{width}}  {value:<{value_width}}  {unit}")
    if r.get("posterior_collapse_message"):
        print(f"warning: {r['posterior_collapse_message']}")
    print(f"wrote {Path(args.run_dir) / 'evaluation.json'}")
    return 0


def _cmd_denoise(args) -> int:
    from .run import denoise_run

    out = _output(args.output, (".npy", ".npz", ".png"), "denoised samples")
    with _working(f"denoising {args.data}..."):
        r = denoise_run(args.run_dir, args.data, noise=args.noise, level=args.noise_level, seed=args.seed,
                        split=args.split, limit=args.limit)
    suffix = out.suffix.lower()
    if suffix == ".png":
        rows = [a[: args.n] for a in (r.clean, r.noisy, r.denoised) if a is not None]
        _save_grid(out, np.concatenate(rows), ncols=len(rows[0]))
    elif suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"denoised": r.denoised, "noisy": r.noisy, **({"clean": r.clean} if r.clean is not None else {})}
        with open(out, "wb") as f:
            np.savez(f, **arrays)
    else:
        _save_array(out, r.denoised)
    if r.clean is not None:
        print(f"PSNR against the clean data: noisy {r.psnr_noisy:.2f} dB, denoised {r.psnr_denoised:.2f} dB "
              f"({args.noise} noise, level {args.noise_level:g})")
    print(f"wrote {len(r.denoised)} denoised samples to {out}")
    return 0


def _cmd_detect(args) -> int:
    from .run import detect_run

    out = None if args.output is None else _output(args.output, (".csv",), "scores")
    with _working(f"scoring {args.data}..."):
        r = detect_run(args.run_dir, args.data, contamination=args.contamination, threshold=args.threshold,
                       scoring=args.scoring, split=args.split, limit=args.limit)
    if out is not None:
        _write_csv(out, ["index", "score", "is_outlier"],
                   ((i, f"{s:.7g}", int(o)) for i, (s, o) in enumerate(zip(r.scores, r.is_outlier))))
    n_out = int(r.is_outlier.sum())
    how = f"--threshold {args.threshold:g}" if args.threshold is not None else f"contamination {args.contamination:g}"
    print(f"{n_out} of {len(r.scores)} samples flagged as outliers ({args.scoring} score below {r.threshold:.6g}; {how})")
    worst = np.argsort(r.scores, kind="stable")[: min(10, n_out)]
    if len(worst):
        print("most anomalous: " + ", ".join(f"{i} ({r.scores[i]:.4g})" for i in worst))
    if out is not None:
        print(f"wrote {out}")
    return 0


def _cmd_impute(args) -> int:
    from .run import impute_run

    out = _output(args.output, (".npy", ".csv"), "filled data")
    with _working(f"imputing {args.data}..."):
        r = impute_run(args.run_dir, args.data, n_iter=args.n_iter, strategy=args.strategy, seed=args.seed,
                       split=args.split, limit=args.limit)
    _save_array(out, r.filled)
    rows = int(r.missing.reshape(len(r.missing), -1).any(axis=1).sum())
    print(f"filled {int(r.missing.sum())} missing values in {rows} of {len(r.filled)} samples; wrote {out}")
    return 0


def _cmd_compress(args) -> int:
    from .run import compress_run

    with _working(f"compressing {args.data}..."):
        r = compress_run(args.run_dir, args.data, args.output, bits=args.bits, split=args.split, limit=args.limit)
    print(f"compressed {r.n_samples} samples into {r.n_bytes} bytes ({r.bits_per_sample:.2f} bits per sample, "
          f"{r.raw_bytes / r.n_bytes:.1f}x smaller than float32); PSNR {r.psnr:.2f} dB; wrote {r.path}")
    return 0


def _cmd_decompress(args) -> int:
    from .run import decompress_run

    out = _output(args.output, (".npy", ".png"), "decompressed samples")
    with _working(f"decompressing {args.file}..."):
        S = decompress_run(args.run_dir, args.file)
    if out.suffix.lower() == ".png":
        _save_grid(out, S, ncols=math.ceil(math.sqrt(len(S))))
    else:
        _save_array(out, S)
    print(f"decompressed {len(S)} samples to {out}")
    return 0


def _cmd_search(args) -> int:
    from .run import search_run

    out = None if args.output is None else _output(args.output, (".csv",), "neighbours")
    with _working(f"searching {args.data}..."):
        r = search_run(args.run_dir, args.data, args.query, index=args.index, k=args.k, metric=args.metric,
                       split=args.split, limit=args.limit)
    shown = min(len(r.indices), 5)
    for q in range(shown):
        name = f"sample {args.index} of {args.data}" if args.index is not None else f"query {q} of {args.query}"
        label = "" if r.query_labels is None else f" (label {r.query_labels[q]})"
        print(f"{name}{label}: {r.indices.shape[1]} nearest in {args.data}")
        print("  rank  index  distance" + ("  label" if r.labels is not None else ""))
        for rank, (i, d) in enumerate(zip(r.indices[q], r.distances[q]), start=1):
            print(f"  {rank:>4}  {i:>5}  {d:>8.4f}" + (f"  {r.labels[q, rank - 1]:>5}" if r.labels is not None else ""))
    if shown < len(r.indices):
        print(f"... {len(r.indices) - shown} more queries" + ("" if out else "; write them all with -o FILE.csv"))
    if out is not None:
        header = ["query", "rank", "index", "distance"] + (["label"] if r.labels is not None else [])
        _write_csv(out, header, (
            [q, rank + 1, int(r.indices[q, rank]), f"{r.distances[q, rank]:.7g}"]
            + ([r.labels[q, rank]] if r.labels is not None else [])
            for q in range(len(r.indices)) for rank in range(r.indices.shape[1])
        ))
        print(f"wrote {out}")
    return 0


def _cmd_interpolate(args) -> int:
    from .run import interpolate_run

    out = _output(args.output, (".png", ".npy"), "interpolations")
    S = interpolate_run(args.run_dir, args.data, args.a, args.b, steps=args.steps, method=args.method,
                        split=args.split, limit=args.limit)
    if out.suffix.lower() == ".png":
        _save_grid(out, S, ncols=len(S))
    else:
        _save_array(out, S)
    print(f"wrote {len(S)} decoded points from sample {args.a} to sample {args.b} ({args.method}) to {out}")
    return 0


def _cmd_compare_pca(args) -> int:
    from .run import compare_pca_run

    out = _output(args.output, (".png",), "plots")
    r = compare_pca_run(args.run_dir, args.data, out, split=args.split, limit=args.limit)
    print(f"reconstruction MSE per value on {r['n_samples']} samples of {args.data}, {r['latent_dim']}-D code: "
          f"autoencoder {r['autoencoder_mse']:.6g}, PCA ({r['components']} components, fitted on the run's training "
          f"data) {r['pca_mse']:.6g}")
    print(f"wrote {out}")
    return 0


# -- entry point ------------------------------------------------------------------------------------


def _error(message: str) -> int:
    print(f"aekit: error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for user errors, 130 when interrupted)."""
    from .run import torch_threads
    from .train import NonFiniteLossError

    try:
        args = build_parser().parse_args(argv)
        with torch_threads(getattr(args, "threads", None)):
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
