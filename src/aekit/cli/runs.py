"""Commands that make and read run folders: fit, demo, report, explore, info, list-models, encode, generate,
export."""

from __future__ import annotations

import json
import math
import sys

from .args import add_data_args, at_least_two, data_kwargs, positive_int, threads_arg
from .output import output_path, print_metrics, save_array, save_grid, working
from .params import UsageError, add_param_flags, catalog, check_applies, fit_settings, param_table, show

__all__ = ["add_commands"]


def add_commands(sub, *, with_params: bool) -> None:
    """The run commands; ``with_params`` adds every estimator parameter to ``fit`` as a flag (read
    from the families' catalog, so only when ``fit`` is the command)."""
    fit = sub.add_parser(
        "fit", help="train a model into a run folder",
        description="Train a model; the run folder is written as training goes (checkpoint and history.csv "
                    "every epoch; model.safetensors, config.json, metrics.json and report.html at the end).",
    )
    fit.add_argument("--data", help="digits (default), mnist, fashion-mnist, binarized-mnist, sprites, or a path to a .npy, "
                     ".npz, .csv file or a folder of images")
    fit.add_argument("--data-root", metavar="DIR",
                     help="folder holding the MNIST / Fashion-MNIST IDX files, when they are not found where aekit looks")
    fit.add_argument("--model", metavar="NAME", help="model family (aekit list-models shows them)")
    fit.add_argument("--out", metavar="RUN_DIR", help="run folder to write")
    fit.add_argument("--config", metavar="FILE", help="TOML file of settings (the flags' names, snake_case or "
                     "kebab-case, plus model, data, data_root, seed, limit, out); flags override it")
    fit.add_argument("--limit", type=positive_int, metavar="N",
                     help="use only the first N samples of the training and of the evaluation data")
    fit.add_argument("--resume", action="store_true", help="continue the interrupted run in --out from its checkpoint, "
                     "with the settings in its config.json (flags override them, e.g. more --epochs)")
    fit.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    threads_arg(fit)
    fit.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    fit.add_argument("--tensorboard", action="store_true", default=None,
                     help="also write TensorBoard event files to RUN_DIR/tensorboard every epoch: losses and their "
                          "parts (train and validation), learning rate, KL per dimension (VAEs), reconstructions and "
                          "samples (images); view with `tensorboard --logdir RUN_DIR/tensorboard`. Needs "
                          "pip install aekit[tensorboard]")
    if with_params:
        add_param_flags(fit, param_table())
    fit.set_defaults(func=_cmd_fit)

    demo = sub.add_parser("demo", help="train a 2-D VAE on the embedded digits and write a report",
                          description="Train a VAE with a 2-D code on the embedded digits (well under a minute "
                          "on two CPU cores), evaluate it and write the run folder with report.html.")
    demo.add_argument("--out", default="runs/demo", metavar="RUN_DIR", help="run folder (default: runs/demo)")
    demo.add_argument("--epochs", type=positive_int, metavar="N", help="epochs (default: the demo's 100)")
    demo.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    threads_arg(demo)
    demo.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    demo.set_defaults(func=_cmd_demo)

    rep = sub.add_parser("report", help="(re)build a run folder's report.html")
    rep.add_argument("run_dir", metavar="RUN_DIR")
    threads_arg(rep)
    rep.set_defaults(func=_cmd_report)

    exp = sub.add_parser(
        "explore", help="write a run's latent explorer (an interactive page)",
        description="Write the latent explorer of a finished run: one self-contained HTML page (no network, no "
                    "server) mapping the codes of the run's evaluation data (or of --data), coloured by label. Hover "
                    "a point to see that sample; move over empty space to see the code there decoded live in the "
                    "browser by the model's decoder (a convolutional decoder shows a grid of decodings made here "
                    "instead); variational models get a slider per code dimension, conditional ones a class to "
                    "decode with. The run's report links to RUN_DIR/explorer.html.",
    )
    exp.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (written by aekit fit)")
    exp.add_argument("-o", "--output", metavar="FILE", help="the page to write (default: RUN_DIR/explorer.html)")
    add_data_args(exp, required=False, default="the run's own evaluation data")
    exp.add_argument("--points", type=at_least_two, default=2000, metavar="N",
                     help="at most N samples on the map, a seeded random subset (default: 2000)")
    threads_arg(exp)
    exp.set_defaults(func=_cmd_explore)

    enc = sub.add_parser("encode", help="write the codes of a dataset under a run's model")
    enc.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (written by aekit fit)")
    add_data_args(enc)
    enc.add_argument("-o", "--output", required=True, metavar="FILE", help="codes file: .npy, or .csv")
    threads_arg(enc)
    enc.set_defaults(func=_cmd_encode)

    gen = sub.add_parser("generate", help="draw samples from a run's generative model")
    gen.add_argument("run_dir", metavar="RUN_DIR")
    gen.add_argument("-n", type=positive_int, default=64, metavar="N",
                     help="number of samples (per class for conditional models; default: 64)")
    gen.add_argument("-o", "--output", required=True, metavar="FILE", help="an image grid (.png) or the array (.npy)")
    gen.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the prior draws (default: 0)")
    gen.add_argument("--label", help="conditional models: the class to draw (default: every class, one per row)")
    threads_arg(gen)
    gen.set_defaults(func=_cmd_generate)

    exp = sub.add_parser(
        "export", help="write a run's model as ONNX graphs (encoder.onnx, decoder.onnx)",
        description="Write a run's encoder and decoder as ONNX graphs, to run without PyTorch (onnxruntime). The "
                    "encoder takes raw data in the run's layout and units (standardization folded in) and gives the "
                    "code z (and z_logvar for VAEs, indices for VQ-VAE); the decoder maps z (VQ-VAE: indices) back "
                    "to data. Conditional models take a label index y (int64) in both. The batch axis is dynamic. "
                    "Needs pip install aekit[onnx].",
    )
    exp.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (written by aekit fit)")
    exp.add_argument("--format", default="onnx", choices=("onnx",), help="export format (default: onnx)")
    exp.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write encoder.onnx and decoder.onnx into")
    exp.add_argument("--opset", type=positive_int, metavar="N", help="ONNX opset version, 13 to 20 (default: 17)")
    exp.set_defaults(func=_cmd_export)

    info = sub.add_parser("info", help="print a run's settings and final metrics")
    info.add_argument("run_dir", metavar="RUN_DIR")
    info.add_argument("--json", action="store_true", help="print config and metrics as JSON")
    info.set_defaults(func=_cmd_info)

    lm = sub.add_parser("list-models", help="list the model families and their estimators")
    lm.set_defaults(func=_cmd_list_models)


def _cmd_fit(args) -> int:
    from .. import run as runlib

    table = param_table()
    run, params = fit_settings(args, table)
    out = run.pop("out", None)
    if not out:
        raise UsageError("fit needs --out RUN_DIR (the run folder to write)")
    progress = not args.quiet
    families = catalog()["families"]
    if args.resume:
        model = run.get("model") or runlib.read_run(out)["config"]["model"]
        check_applies(model, params, table)
        result = runlib.resume_run(out, progress=progress, **run, **params)
    else:
        model = run.get("model")
        if not model:
            raise UsageError(f"fit needs --model NAME (one of {', '.join(families)})")
        if model not in families:
            raise UsageError(f"invalid choice: {model!r} for --model; choose one of {', '.join(families)}")
        check_applies(model, params, table)
        result = runlib.fit_run(
            out, model, run.get("data", "digits"), params, seed=run.get("seed", 0), limit=run.get("limit"),
            overwrite=args.overwrite, progress=progress, threads=run.get("threads"), data_root=run.get("data_root"),
            tensorboard=bool(run.get("tensorboard")),
        )
    _summary(result, args.quiet)
    return 0


def _cmd_demo(args) -> int:
    from ..run import demo

    result = demo(args.out, epochs=args.epochs, progress=not args.quiet, overwrite=args.overwrite)
    _summary(result, args.quiet)
    return 0


def _summary(result, quiet: bool) -> None:
    if result.metrics is None:  # a non-zero torchrun rank: rank 0 reports
        return
    if not quiet:
        print(f"metrics on {result.metrics['eval_data']}:")
        print_metrics(result.metrics)
        print(f"run folder: {result.run_dir}")
        if result.tensorboard is not None:
            print(f"tensorboard: tensorboard --logdir {result.tensorboard}")
    print(f"report: {result.report.resolve().as_uri()}")


def _cmd_report(args) -> int:
    from ..report import build_report

    print(f"report: {build_report(args.run_dir).resolve().as_uri()}")
    return 0


def _cmd_explore(args) -> int:
    from ..report import build_explorer

    out = output_path(args.output, (".html", ".htm"), "explorer pages") if args.output else None
    with working("building the explorer"):
        path = build_explorer(args.run_dir, out, data=args.data, max_points=args.points, **data_kwargs(args))
    print(f"explorer: {path.resolve().as_uri()}")
    return 0


def _cmd_encode(args) -> int:
    from ..run import encode_run

    out = output_path(args.output, (".npy", ".csv"), "codes")
    Z = encode_run(args.run_dir, args.data, **data_kwargs(args))
    save_array(out, Z, column="z")
    print(f"wrote {Z.shape[0]} codes of size {Z.shape[1]} to {out}")
    return 0


def _cmd_generate(args) -> int:
    from ..run import generate_run

    out = output_path(args.output, (".png", ".npy"), "samples")
    label = args.label
    if label is not None:
        try:
            label = int(label)
        except ValueError:
            pass
    S = generate_run(args.run_dir, args.n, seed=args.seed, label=label)
    if out.suffix.lower() == ".npy":
        save_array(out, S)
    else:
        save_grid(out, S, ncols=args.n if len(S) > args.n else math.ceil(math.sqrt(len(S))))
    print(f"wrote {len(S)} samples to {out}")
    return 0


def _cmd_export(args) -> int:
    from ..run import export_run

    files = export_run(args.run_dir, args.output, format=args.format, opset=args.opset)
    for line in files.describe():
        print(f"wrote {line}")
    print(f"opset {files.opset}; run them with onnxruntime (pip install onnxruntime)")
    return 0


def _cmd_info(args) -> int:
    from ..runfolder import read_run

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
        print(f"  {k} = {show(v)}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in c.get("versions", {}).items()))
    if m is None:
        print("metrics: none yet (the run has not finished)")
        return 0
    resumed = f", resumed {c['resumed']} time(s)" if c.get("resumed") else ""
    print(f"metrics ({m.get('epochs_trained')} epochs, {c.get('train_time_s')} s of training{resumed}):")
    print_metrics(m)
    if m.get("final"):
        print("  last epoch: " + ", ".join(f"{a}={b:.4g}" for a, b in m["final"].items()))
    return 0


def _cmd_list_models(args) -> int:
    families = catalog()["families"]
    width = max(len(n) for n in families)
    est_width = max(len(f["estimator"]) for f in families.values())
    try:
        for name, f in families.items():
            print(f"{name:<{width}}  {f['estimator']:<{est_width}}  {f['summary']}")
        sys.stdout.flush()
    except BrokenPipeError:  # `aekit list-models | head`: the reader has what it wanted
        _quiet_broken_pipe()
    return 0


def _quiet_broken_pipe() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
