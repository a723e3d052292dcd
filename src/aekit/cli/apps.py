"""Commands over a finished run's model and data: evaluate, denoise, detect, impute, compress,
decompress, search, interpolate, compare-pca. Each calls one function of :mod:`aekit.run.commands`
and names its data the same way (``--data DATA``, ``--split``, default test)."""

from __future__ import annotations

import math
from pathlib import Path

from .args import (
    data_kwargs,
    add_data_args,
    at_least_two,
    count,
    finite_float,
    fraction,
    nonnegative_float,
    positive_int,
    threads_arg,
)
from .output import output_path, print_metrics, save_array, save_grid, working, write_csv

__all__ = ["add_commands", "app_parser"]


def app_parser(sub, name: str, help: str, description: str, *, data: bool = True):
    """A command over a run's model: RUN_DIR, then (``data``) --data DATA with --data-root,
    --split and --limit; and --threads."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (written by aekit fit)")
    if data:
        add_data_args(p)
    threads_arg(p)
    return p


def add_commands(sub) -> None:
    """The evaluation and application commands (each a function of ``aekit.run``)."""
    ev = app_parser(sub, "evaluate", "evaluate a run's model on a dataset (writes evaluation.json)",
                     "Evaluate a run's model on DATA: reconstruction error and PSNR; for VAEs the ELBO, KL per "
                     "latent dimension, active units and, with --nll-samples K, the importance-weighted NLL "
                     "(Burda et al. 2016; an upper bound on the true NLL that tightens as K grows); for data with "
                     "known factors of variation (sprites, or an .npz with 'factors') MIG, the FactorVAE metric and "
                     "DCI. Prints a table and writes RUN_DIR/evaluation.json.")
    ev.add_argument("--nll-samples", type=count, default=0, metavar="K",
                    help="importance samples per data point for the NLL (variational models; 0 skips it, the "
                         "default; costs K decoder passes per sample; shows a progress bar)")
    ev.set_defaults(func=_cmd_evaluate)

    dn = app_parser(sub, "denoise", "denoise data with a run's model",
                     "Write the run model's reconstruction of DATA, its clean estimate (best with a run of the "
                     "denoising model). With --noise, DATA is taken as clean: noise is added first and the PSNR "
                     "of the noisy and of the denoised samples is printed. Data in [0, 1] stay clipped to [0, 1].")
    dn.add_argument("-o", "--output", required=True, metavar="FILE",
                    help="denoised samples as .npy; .npz (arrays denoised, noisy and, with --noise, clean); or "
                         ".png, a grid of the first -n samples: clean (with --noise), noisy and denoised rows")
    dn.add_argument("--noise", metavar="KIND", help="add this noise to DATA first: gaussian (--noise-level is its "
                    "std), masking (fraction of values set to 0) or salt_and_pepper (fraction set to 0 or 1)")
    dn.add_argument("--noise-level", type=nonnegative_float, default=0.3, metavar="X",
                    help="std of gaussian noise, or the fraction of values hit (default: 0.3)")
    dn.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the noise (default: 0)")
    dn.add_argument("-n", type=positive_int, default=8, metavar="N", help="samples shown in a .png (default: 8)")
    dn.set_defaults(func=_cmd_denoise)

    de = app_parser(sub, "detect", "score samples for anomalies with a run's model",
                     "Score every sample of DATA with the run's model (AnomalyDetector over it: minus the mean "
                     "squared reconstruction error per value, or the ELBO; higher is more normal) and flag as "
                     "outliers the samples scoring below the threshold.")
    de.add_argument("-o", "--output", metavar="FILE", help="write a CSV with columns index, score, is_outlier (1 or 0)")
    cut = de.add_mutually_exclusive_group()
    cut.add_argument("--contamination", type=fraction, default=0.1, metavar="X",
                     help="expected fraction of outliers in DATA, in (0, 0.5]: the threshold is this quantile of "
                          "DATA's scores (default: 0.1)")
    cut.add_argument("--threshold", type=finite_float, metavar="T", help="a fixed score threshold instead")
    de.add_argument("--scoring", choices=("reconstruction", "latent_knn", "elbo", "auto"), default="reconstruction",
                    help="reconstruction (default: minus the mean squared error per value), latent_knn (minus the "
                         "mean distance of a sample's code to its 5 nearest other samples' codes), elbo (variational "
                         "models) or auto (latent_knn for 500 images or more, else reconstruction)")
    de.set_defaults(func=_cmd_detect)

    im = app_parser(sub, "impute", "fill the missing values (NaN) of data with a run's model",
                     "Fill the NaNs of DATA with the run's model (AutoencoderImputer over it): a masked model "
                     "(--model masked) fills them in one pass from each row's observed values; any other starts "
                     "from each feature's observed mean, then repeats 'reconstruct, overwrite the missing values'. "
                     "Observed values are written unchanged.")
    im.add_argument("-o", "--output", required=True, metavar="FILE", help="the filled data: .npy, or .csv for tables")
    im.add_argument("--n-iter", type=positive_int, default=10, metavar="N",
                    help="reconstruct-and-replace rounds, or the chain length for --strategy sample (default: 10)")
    im.add_argument("--strategy", choices=("reconstruct", "sample"), default="reconstruct",
                    help="reconstruct (default), or sample: Metropolis-within-Gibbs (Mattei & Frellsen 2018; vae only)")
    im.add_argument("--seed", type=int, default=0, metavar="N", help="seeds --strategy sample (default: 0)")
    im.set_defaults(func=_cmd_impute)

    co = app_parser(sub, "compress", "compress data into a file with a run's model as codec",
                     "Compress DATA: encode with the run's model, quantise each code dimension uniformly to "
                     "--bits bits and range-code the symbols. The codec's tables (ranges and frequencies) are "
                     "fitted once on the run's training data and kept in RUN_DIR (codec-<bits>bit-<hash>.npz); a "
                     "file holds only the stream, so `aekit decompress RUN_DIR FILE` reads it back. Prints the "
                     "size, bits per sample and the PSNR of the decompressed data.")
    co.add_argument("-o", "--output", required=True, metavar="FILE", help="the compressed file (e.g. data.aek)")
    co.add_argument("--bits", type=positive_int, default=8, metavar="B",
                    help="quantisation bits per code dimension, 1 to 12 (default: 8)")
    co.set_defaults(func=_cmd_compress)

    dc = app_parser(sub, "decompress", "read back a file written by compress",
                     "Decompress FILE, written by `aekit compress` with the same RUN_DIR.", data=False)
    dc.add_argument("file", metavar="FILE", help="a file written by aekit compress")
    dc.add_argument("-o", "--output", required=True, metavar="OUT", help="the samples as .npy, or a .png grid of images")
    dc.set_defaults(func=_cmd_decompress)

    se = app_parser(sub, "search", "find the nearest neighbours of samples in a run's code space",
                     "Index DATA by its codes under the run's model and print the -k nearest samples of each "
                     "query (index, distance, label when DATA has labels).")
    se.add_argument("--query", metavar="QUERY",
                    help="samples to look up: a dataset name or path (all of it); or use --index")
    se.add_argument("--index", type=int, metavar="I", help="query with the I-th sample of DATA instead of QUERY")
    se.add_argument("-k", type=positive_int, default=10, metavar="K", help="neighbours per query (default: 10)")
    se.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                    help="distance between codes: euclidean (default) or cosine (1 - cosine similarity)")
    se.add_argument("-o", "--output", metavar="FILE", help="write a CSV with columns query, rank, index, distance[, label]")
    se.set_defaults(func=_cmd_search)

    ip = app_parser(sub, "interpolate", "decode the path between the codes of two samples",
                     "Encode samples --a and --b of DATA, walk between their codes in --steps points (endpoints "
                     "included) and decode each point.")
    ip.add_argument("--a", type=int, required=True, metavar="I", help="index of the first sample in DATA")
    ip.add_argument("--b", type=int, required=True, metavar="J", help="index of the last sample in DATA")
    ip.add_argument("--steps", type=at_least_two, default=8, metavar="N", help="points on the path, at least 2 (default: 8)")
    ip.add_argument("--method", choices=("linear", "slerp"), default="linear",
                    help="linear (default), or slerp: along the great circle, the norm moving linearly")
    ip.add_argument("-o", "--output", required=True, metavar="FILE", help="a .png row of images, or the array as .npy")
    ip.set_defaults(func=_cmd_interpolate)

    cp = app_parser(sub, "compare-pca", "plot a run's 2-D code next to PCA's and compare their errors",
                     "Plot the run's code of DATA (its first two principal components when wider than 2) next to "
                     "PCA's 2-D projection, coloured by label, and print the reconstruction error of the model and "
                     "of a PCA with as many components as the code, fitted on the run's training data.")
    cp.add_argument("-o", "--output", required=True, metavar="FILE", help="the plot (.png)")
    cp.set_defaults(func=_cmd_compare_pca)


def _cmd_evaluate(args) -> int:
    from ..run import evaluate_run

    if args.nll_samples:  # long: a progress bar with the time remaining instead of a spinner
        r = evaluate_run(args.run_dir, args.data, nll_samples=args.nll_samples, progress=True, **data_kwargs(args))
    else:
        with working(f"evaluating on {args.data}..."):
            r = evaluate_run(args.run_dir, args.data, **data_kwargs(args))
    print(f"evaluation of {args.run_dir} on {args.data} ({args.split}, {r['n_samples']} samples)")
    print_metrics(r)
    print(f"wrote {Path(args.run_dir) / 'evaluation.json'}")
    return 0


def _cmd_denoise(args) -> int:
    import numpy as np

    from ..run import denoise_run

    out = output_path(args.output, (".npy", ".npz", ".png"), "denoised samples")
    with working(f"denoising {args.data}..."):
        r = denoise_run(args.run_dir, args.data, noise=args.noise, level=args.noise_level, seed=args.seed,
                        **data_kwargs(args))
    suffix = out.suffix.lower()
    if suffix == ".png":
        rows = [a[: args.n] for a in (r.clean, r.noisy, r.denoised) if a is not None]
        save_grid(out, np.concatenate(rows), ncols=len(rows[0]))
    elif suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"denoised": r.denoised, "noisy": r.noisy, **({"clean": r.clean} if r.clean is not None else {})}
        with open(out, "wb") as f:
            np.savez(f, **arrays)
    else:
        save_array(out, r.denoised)
    if r.clean is not None:
        print(f"PSNR against the clean data: noisy {r.psnr_noisy:.2f} dB, denoised {r.psnr_denoised:.2f} dB "
              f"({args.noise} noise, level {args.noise_level:g})")
    print(f"wrote {len(r.denoised)} denoised samples to {out}")
    return 0


def _cmd_detect(args) -> int:
    import numpy as np

    from ..run import detect_run

    out = None if args.output is None else output_path(args.output, (".csv",), "scores")
    with working(f"scoring {args.data}..."):
        r = detect_run(args.run_dir, args.data, contamination=args.contamination, threshold=args.threshold,
                       scoring=args.scoring, **data_kwargs(args))
    if out is not None:
        write_csv(out, ["index", "score", "is_outlier"],
                   ((i, f"{s:.7g}", int(o)) for i, (s, o) in enumerate(zip(r.scores, r.is_outlier))))
    n_out = int(r.is_outlier.sum())
    how = f"--threshold {args.threshold:g}" if args.threshold is not None else f"contamination {args.contamination:g}"
    print(f"{n_out} of {len(r.scores)} samples flagged as outliers ({r.detector.scoring_} score below {r.threshold:.6g}; {how})")
    worst = np.argsort(r.scores, kind="stable")[: min(10, n_out)]
    if len(worst):
        print("most anomalous: " + ", ".join(f"{i} ({r.scores[i]:.4g})" for i in worst))
    if out is not None:
        print(f"wrote {out}")
    return 0


def _cmd_impute(args) -> int:
    from ..run import impute_run

    out = output_path(args.output, (".npy", ".csv"), "filled data")
    with working(f"imputing {args.data}..."):
        r = impute_run(args.run_dir, args.data, n_iter=args.n_iter, strategy=args.strategy, seed=args.seed,
                       **data_kwargs(args))
    save_array(out, r.filled)
    rows = int(r.missing.reshape(len(r.missing), -1).any(axis=1).sum())
    print(f"filled {int(r.missing.sum())} missing values in {rows} of {len(r.filled)} samples; wrote {out}")
    return 0


def _cmd_compress(args) -> int:
    from ..run import compress_run

    with working(f"compressing {args.data}..."):
        r = compress_run(args.run_dir, args.data, args.output, bits=args.bits, **data_kwargs(args))
    print(f"compressed {r.n_samples} samples into {r.n_bytes} bytes ({r.bits_per_sample:.2f} bits per sample, "
          f"{r.raw_bytes / r.n_bytes:.1f}x smaller than float32); PSNR {r.psnr:.2f} dB; wrote {r.path}")
    return 0


def _cmd_decompress(args) -> int:
    from ..run import decompress_run

    out = output_path(args.output, (".npy", ".png"), "decompressed samples")
    with working(f"decompressing {args.file}..."):
        S = decompress_run(args.run_dir, args.file)
    if out.suffix.lower() == ".png":
        save_grid(out, S, ncols=math.ceil(math.sqrt(len(S))))
    else:
        save_array(out, S)
    print(f"decompressed {len(S)} samples to {out}")
    return 0


def _cmd_search(args) -> int:
    from ..run import search_run

    out = None if args.output is None else output_path(args.output, (".csv",), "neighbours")
    with working(f"searching {args.data}..."):
        r = search_run(args.run_dir, args.data, args.query, index=args.index, k=args.k, metric=args.metric,
                       **data_kwargs(args))
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
        write_csv(out, header, (
            [q, rank + 1, int(r.indices[q, rank]), f"{r.distances[q, rank]:.7g}"]
            + ([r.labels[q, rank]] if r.labels is not None else [])
            for q in range(len(r.indices)) for rank in range(r.indices.shape[1])
        ))
        print(f"wrote {out}")
    return 0


def _cmd_interpolate(args) -> int:
    from ..run import interpolate_run

    out = output_path(args.output, (".png", ".npy"), "interpolations")
    S = interpolate_run(args.run_dir, args.data, args.a, args.b, steps=args.steps, method=args.method,
                        **data_kwargs(args))
    if out.suffix.lower() == ".png":
        save_grid(out, S, ncols=len(S))
    else:
        save_array(out, S)
    print(f"wrote {len(S)} decoded points from sample {args.a} to sample {args.b} ({args.method}) to {out}")
    return 0


def _cmd_compare_pca(args) -> int:
    from ..run import compare_pca_run

    out = output_path(args.output, (".png",), "plots")
    r = compare_pca_run(args.run_dir, args.data, out, **data_kwargs(args))
    print(f"reconstruction MSE per value on {r['n_samples']} samples of {args.data}, {r['latent_dim']}-D code: "
          f"autoencoder {r['autoencoder_mse']:.6g}, PCA ({r['components']} components, fitted on the run's training "
          f"data) {r['pca_mse']:.6g}")
    print(f"wrote {out}")
    return 0
