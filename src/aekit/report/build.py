"""Build a run folder's report.html from what the run wrote (config, history, metrics, model) and
the run's evaluation data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from .._utils import atomic_write_text
from ..evaluate import KL_ACTIVE_THRESHOLD, metric_rows
from ..runfolder import (
    EXPLORER_NAME,
    HISTORY_NAME,
    REPORT_NAME,
    RunData,
    load_estimator,
    load_run_data,
    read_history,
    read_run,
)
from . import figures
from .explore import write_explorer
from .html import Figure, Section, render

__all__ = ["build_report"]

MAX_POINTS = 2000  # latent scatter
N_RECON = 12  # originals / reconstructions shown
N_PAIRS, N_STEPS = 4, 8  # interpolations: rows, decoded points between (and including) the two codes


def build_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html``: one self-contained page (figures embedded as PNG) with the
    run's settings, key metrics, training curves, reconstructions, the latent space, samples and
    interpolations (generative models), per-dimension KL (VAEs), codebook use (VQ-VAE) and, for
    data with known factors of variation, the disentanglement metrics with latent traversals
    per factor; and, next to it, ``explorer.html``, the latent explorer it links to
    (:func:`build_explorer`).

    Returns the path of the page.
    """
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    config, metrics = run["config"], run["metrics"]
    if metrics is None:
        raise ValueError(f"{run_dir}: the run has not finished (no metrics.json); resume it first")
    est = load_estimator(run_dir)
    caps = est.capabilities()  # which sections apply
    history = read_history(run_dir / HISTORY_NAME)
    collapse = _collapse_warnings(metrics)

    sections = [_training(history, _loss_unit(est))]
    try:
        data = load_run_data(config["data"], seed=config["seed"], limit=config["limit"], root=config.get("data_root"))
    except (OSError, ValueError) as e:
        sections.append(Section("data", "Data figures", text=f"The run's data could not be loaded ({_one_line(e)}), "
                                "so reconstructions, the latent space and interpolations are left out."))
    else:
        rng = np.random.default_rng(config["seed"])
        sections += [_reconstructions(est, data), _latent(est, data, rng)]
        if data.image_shape is not None:  # pictures of samples and paths mean something for images only
            if caps["generative"]:
                sections.append(_samples(est, data, config["seed"]))
            sections.append(_interpolations(est, data, rng))
        if caps["quantised"]:
            sections.append(_codebook(est, data, metrics))
        if data.factors_eval is not None:  # data generated from known factors of variation
            sections += _disentanglement(est, data, metrics)
        sections.append(_explorer(run_dir, est, data))
    if caps["variational"]:
        sections.append(_kl(metrics, caps["hierarchical"], collapse))

    html = render(
        title=f"{config['estimator']} on {_data_name(config)}",
        subtitle=(f"{metrics.get('epochs_trained', len(history))} epochs on {config['n_train']} samples; "
                  f"metrics on {metrics['eval_data']} ({metrics.get('n_samples', config['n_eval'])} samples)"),
        metrics=_key_metrics(metrics, images=bool(config.get("image_shape"))),
        facts=_facts(config, metrics, run_dir),
        warnings=collapse,
        sections=[s for s in sections if s is not None],
        settings=_settings(config),
        version=__version__,
    )
    path = run_dir / REPORT_NAME
    atomic_write_text(path, html)
    return path


# -- header ------------------------------------------------------------------------------------


def _data_name(config) -> str:
    return Path(config["data"]).name


def _key_metrics(m: dict[str, Any], images: bool) -> list[tuple[str, str]]:
    """The headline metrics (PSNR only for images: for standardized tables it means nothing)."""
    scaled = " (standardized)" if m.get("units") == "standardized" else ""
    label = {"recon_mse": f"test recon MSE{scaled}", "psnr": "PSNR (dB)", "elbo": "ELBO (nats)", "kl_total": "KL (nats)"}
    return [(label.get(r.key, r.label), r.value) for r in metric_rows(m, detail=False) if images or r.key != "psnr"]


def _facts(config, metrics, run_dir: Path) -> list[tuple[str, str]]:
    p = config["params"]
    code = f"latent_dim {p.get('latent_dim')}, hidden_dims {tuple(p.get('hidden_dims') or ())}, {p.get('architecture')}"
    v = config.get("versions", {})
    return [
        ("model", f"{config['estimator']} ({config['model']}): {code}"),
        ("data", f"{config['data']}: {config['n_train']} training samples"
                 + (f" (first {config['limit']})" if config.get("limit") else "")),
        ("evaluation", f"{metrics['eval_data']}"),
        ("training", (f"{metrics.get('epochs_trained')} epochs, batch {p.get('batch_size')}, lr {p.get('lr')}, "
                      f"seed {config['seed']}, {config.get('train_time_s', 'n/a')} s of training in all"
                      + (f" (resumed {config['resumed']} time{'s' if config['resumed'] > 1 else ''})"
                         if config.get("resumed") else ""))),
        ("finished", str(config.get("finished", "n/a"))),
        ("versions", ", ".join(f"{k} {val}" for k, val in v.items())),
        ("run folder", str(run_dir.resolve())),
    ]


def _settings(config) -> list[tuple[str, str]]:
    rows = [(k, str(v)) for k, v in config.items() if k not in ("params", "versions")]
    rows += [(f"params.{k}", str(v)) for k, v in config["params"].items()]
    rows += [(f"versions.{k}", str(v)) for k, v in config.get("versions", {}).items()]
    return rows


def _collapse_warnings(m: dict[str, Any]) -> list[str]:
    out = []
    inactive = m.get("inactive_dims") or []
    if inactive:
        out.append(
            f"posterior collapse: {len(inactive)} of {m['latent_dim']} latent dimensions carry less than "
            f"{KL_ACTIVE_THRESHOLD} nats of KL (dimensions {', '.join(map(str, inactive))}); the decoder ignores "
            "them. Try KL warm-up (kl_warmup_epochs), free_bits, a smaller beta or a smaller latent_dim."
        )
    if m.get("posterior_collapse") and m.get("posterior_collapse_message"):
        out.append(m["posterior_collapse_message"])
    return out


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


# -- sections ----------------------------------------------------------------------------------


def _loss_unit(est) -> str:
    """What the loss and its parts are measured in: nats for likelihoods, else squared error."""
    if est.capabilities()["variational"] or est.model_.config.probability_setting() is not None:
        return "nats per sample"
    scaled = ", standardized" if getattr(est, "mean_", None) is not None else ""
    return f"squared error per sample{scaled}"


def _training(history, unit: str) -> Section:
    if not history:
        return Section("training", "Training curves", text="No epochs were recorded.")
    has_val = any(k.startswith("val_") for k in history[0])
    return Section(
        "training", "Training curves",
        text=f"The loss and each of its parts per epoch ({unit}, summed over features, averaged over the epoch's "
             "samples), on the training data"
             + (" (solid) and the validation part held out from it (dashed)." if has_val else ".")
             + " When the first epochs would dwarf the rest, a panel's y axis is fitted to the later ones and "
               "says how many epochs lie above it.",
        figure=Figure("training_curves", figures.training_curves(history, unit), "training curves"),
    )


def _labels_for(est, y):
    """Labels to pass to a conditional estimator (None otherwise, or when unknown classes appear)."""
    if y is None or not est.capabilities()["conditional"] or not np.isin(y, est.classes_).all():
        return None
    return y


def _call(method, X, y):
    return method(X, y) if y is not None else method(X)


def _spread(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to n samples taking the classes in turn (the first of each class, then the second...)."""
    by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    order = [idx[i] for i in range(max(len(b) for b in by_class)) for idx in by_class if i < len(idx)]
    return np.asarray(order[:n])


def _reconstructions(est, data: RunData) -> Section:
    X, y = data.X_eval, data.y_eval
    idx = _spread(y, N_RECON) if y is not None else np.arange(min(N_RECON, len(X)))
    Xs = np.asarray(X[idx], dtype=np.float32)
    R = _call(est.reconstruct, Xs, None if y is None else _labels_for(est, y[idx]))
    if data.image_shape is None:
        X_all = np.asarray(X, dtype=np.float32)
        R_all = _call(est.reconstruct, X_all, _labels_for(est, y))
        text = (f"Tabular data from {data.eval_description}, each feature standardized by its mean and standard "
                "deviation there, so that features of any scale share one axis: the root-mean-squared "
                "reconstruction error of each feature (top), then samples' features, original and reconstructed "
                "(the model's deterministic reconstruction).")
        names = data.feature_names or tuple(f"feature {i}" for i in range(X_all[0].size))
        rmse = figures.standardized_rmse(X_all, R_all)
        worst = np.argsort(-rmse, kind="stable")[:3]
        text += " Largest errors: " + ", ".join(f"{names[i]} {rmse[i]:.2f}" for i in worst) + " (std units)."
        png = figures.feature_reconstructions(X_all, R_all, names)
        return Section("reconstructions", "Reconstructions", text=text,
                       figure=Figure("reconstructions", png, "reconstruction error per feature and sample profiles"))
    text = (f"Evaluation samples (top) and the model's deterministic reconstruction of each (bottom), "
            f"from {data.eval_description}.")
    png = figures.image_rows([Xs, R], ["original", "reconstruction"], data.image_shape, tile=0.7)
    return Section("reconstructions", "Reconstructions", text=text, figure=Figure("reconstructions", png, "originals and reconstructions"))


def _latent(est, data: RunData, rng) -> Section:
    X, y = data.X_eval, data.y_eval
    idx = np.sort(rng.choice(len(X), MAX_POINTS, replace=False)) if len(X) > MAX_POINTS else np.arange(len(X))
    ys = None if y is None else y[idx]
    Z = _call(est.transform, np.asarray(X[idx], dtype=np.float32), None if ys is None else _labels_for(est, ys))
    k = Z.shape[1]
    if k == 2:
        points, xl, yl = Z, "z[0]", "z[1]"
        how = "the 2-D code itself (posterior mean for VAEs)"
    elif k == 1:
        points = np.column_stack([Z[:, 0], rng.uniform(-1, 1, len(Z))])
        xl, yl = "z[0]", "random jitter (no meaning)"
        how = "the 1-D code on the horizontal axis, spread vertically at random so points do not overlap"
    else:
        from sklearn.decomposition import PCA

        pca = PCA(2, random_state=0).fit(Z)
        points = pca.transform(Z)
        xl, yl = "principal component 1", "principal component 2"
        how = (f"a PCA projection of the {k}-D code onto its first two principal components "
               f"({100 * pca.explained_variance_ratio_.sum():.0f}% of its variance)")
    colour = "coloured by label" if ys is not None else "(the data has no labels)"
    return Section("latent", "Latent space",
                   text=f"{len(Z)} evaluation samples, {colour}: {how}.",
                   figure=Figure("latent_space", figures.latent_scatter(points, ys, xlabel=xl, ylabel=yl), "latent space"))


def _samples(est, data: RunData, seed: int) -> Section:
    from ..apps import sample_grid

    if est.capabilities()["conditional"]:
        classes = est.classes_[:10]
        S = sample_grid(est, 10, y=classes, random_state=seed)
        rows = [S[i * 10 : (i + 1) * 10] for i in range(len(classes))]
        labels = [f"class {c}" for c in classes]
        text = "Random samples from the prior, ten per class (one class per row): decoder means."
    else:
        S = sample_grid(est, 48, random_state=seed)
        rows, labels = [S[i * 12 : (i + 1) * 12] for i in range(4)], [""] * 4
        text = "Random samples: codes drawn from the prior, decoded (decoder means)."
        if getattr(est.model_, "encode_indices", None) is not None:
            text = "Random samples: code indices drawn from the prior fitted after training (independent per position), decoded."
    return Section("samples", "Samples", text=text, figure=Figure("samples", figures.image_rows(rows, labels, data.image_shape), "random samples"))


def _pairs(y: np.ndarray, n: int, conditional: bool, rng) -> list[tuple[int, int]]:
    """Index pairs to interpolate between, from different classes (the same class for a
    conditional model, which decodes the whole path with it)."""
    classes = np.unique(y)
    pairs = []
    for i in range(n):
        a = classes[i % len(classes)]
        b = a if conditional else classes[(i * 3 + 1 + i // len(classes)) % len(classes)]
        ia = rng.choice(np.flatnonzero(y == a))
        choices = np.flatnonzero((y == b) & (np.arange(len(y)) != ia))
        if len(choices) == 0:
            continue
        pairs.append((int(ia), int(rng.choice(choices))))
    return pairs


def _interpolations(est, data: RunData, rng) -> Section:
    from ..apps import interpolate

    X, y = data.X_eval, data.y_eval
    cond = est.capabilities()["conditional"]
    if y is None:
        pairs = [tuple(int(i) for i in rng.choice(len(X), 2, replace=False)) for _ in range(N_PAIRS)]
    else:
        pairs = _pairs(y, N_PAIRS, cond, rng)
    rows, labels = [], []
    for a, b in pairs:
        label = y[a] if cond and y is not None else None
        path = interpolate(est, X[a], X[b], steps=N_STEPS, y=label)
        xa, xb = np.asarray(X[a : a + 1]), np.asarray(X[b : b + 1])
        gap = np.ones_like(xa)  # a white tile sets the inputs apart from the decoded path
        rows.append(np.concatenate([xa, gap, path, gap, xb]))
        labels.append(f"{y[a]} \u2192 {y[b]}" if y is not None else f"#{a} \u2192 #{b}")
    text = (f"Linear interpolation between the codes of two evaluation inputs: the outer columns, set apart, are "
            f"the inputs; the {N_STEPS} columns between them decode evenly spaced points from one code to the other, "
            "the first and last being the inputs' reconstructions"
            + (" (decoded with their common class)." if cond else "."))
    return Section("interpolations", "Interpolations", text=text,
                   figure=Figure("interpolations", figures.image_rows(rows, labels, data.image_shape), "interpolations"))


def _disentanglement(est, data: RunData, m: dict[str, Any]) -> list[Section]:
    """The code against the data's known factors: the normalised mutual information of every
    dimension with every factor (with MIG, the FactorVAE metric and DCI when the run measured
    them), and a latent traversal per factor for images."""
    from ..apps import traverse_factors
    from ..evaluate import disentanglement_metrics

    X = np.asarray(data.X_eval, dtype=np.float32)
    y = _labels_for(est, data.y_eval)
    names = list(data.factor_names or [f"factor {k}" for k in range(data.factors_eval.shape[1])])
    if "normalised_mi" not in m:  # a run from before these metrics, or evaluated elsewhere
        m = {**m, **disentanglement_metrics(_call(est.transform, X, y), data.factors_eval, names,
                                            random_state=int(est.seed_))}
    nmi = np.asarray(m["normalised_mi"])
    v = {r.key: r.value for r in metric_rows(m)}  # formatted; "n/a" where not measured
    said = (f"MIG {v['mig']} (Chen et al. 2018; 1 = each factor told by one dimension alone), FactorVAE metric "
            f"{v['factorvae_score']} (Kim & Mnih 2018; chance {1 / len(names):.2f}), DCI disentanglement "
            f"{v['dci_disentanglement']}, completeness {v['dci_completeness']} and informativeness "
            f"{v['dci_informativeness']} (Eastwood & Williams 2018; held-out R^2 of random forests)")
    text = (f"The data was generated from known factors of variation ({', '.join(names)}). The heat map gives, for "
            f"each code dimension and factor, the mutual information between the dimension (posterior mean for "
            f"VAEs, cut into 20 bins) and the factor, divided by the factor's entropy, over "
            f"{m.get('disentanglement_samples', len(X))} evaluation samples: a disentangled code has one bright cell "
            f"per factor, each in a row of its own. {said}.")
    sections = [Section("disentanglement", "Disentanglement", text=text,
                        figure=Figure("mutual_information", figures.mutual_info_heatmap(nmi, names),
                                      "mutual information of code dimensions with factors"))]
    if data.image_shape is not None:
        rows = traverse_factors(est, X, data.factors_eval, names, steps=N_STEPS + 1, normalised_mi=nmi, y=y)
        images = [np.concatenate([X[:1], np.ones_like(X[:1]), r.images.reshape(len(r.images), *X.shape[1:])])
                  for r in rows]
        labels = [f"{r.factor}: z[{r.dim}] ({r.normalised_mi:.2f})" for r in rows]
        text = ("For each factor, the code dimension with the most information about it (normalised mutual "
                "information in brackets) is swept from its 2nd to its 98th percentile over the evaluation data in "
                "the code of the first evaluation sample (left, set apart), the other dimensions held, and decoded. "
                "In a disentangled code each row changes its factor and nothing else; two factors on one dimension, "
                "or a row that changes several things, show entanglement.")
        sections.append(Section("traversals", "Latent traversals per factor", text=text,
                                figure=Figure("factor_traversals", figures.image_rows(images, labels, data.image_shape),
                                              "latent traversals per factor")))
    return sections


def _kl(m: dict[str, Any], hierarchical: bool, collapse: list[str]) -> Section:
    kl = m["kl_per_dim"]
    inactive = m.get("inactive_dims") or []
    where = " of the top layer (the lower layers' KL is in the ELBO)" if hierarchical else ""
    text = (f"Mean KL(q(z|x) || p(z)) of each latent dimension{where} on the evaluation data, in nats. "
            f"Dimensions under {KL_ACTIVE_THRESHOLD} nats (red) carry no information about the input. "
            f"{m['active_units']} of {m['latent_dim']} dimensions are active by the variance of their posterior means.")
    notes = [] if inactive else [f"Every dimension carries more than {KL_ACTIVE_THRESHOLD} nats: no posterior collapse."]
    return Section("kl", "KL per latent dimension", text=text,
                   figure=Figure("kl_per_dim", figures.kl_per_dimension(kl, KL_ACTIVE_THRESHOLD), "KL per latent dimension"),
                   notes=notes, warning=" ".join(collapse) if collapse else None)


def _codebook(est, data: RunData, m: dict[str, Any]) -> Section:
    import torch

    with torch.no_grad():
        idx = est.model_.encode_indices(est.to_model_input(np.asarray(data.X_eval, dtype=np.float32))).reshape(-1)
    counts = np.bincount(idx.cpu().numpy(), minlength=est.model_.config.codebook_size)
    text = (f"How often each of the {len(counts)} codebook entries is chosen on the evaluation data: "
            f"{100 * m['codebook_usage']:.0f}% are used, perplexity {m['perplexity']:.1f}.")
    return Section("codebook", "Codebook use", text=text,
                   figure=Figure("codebook_usage", figures.codebook_usage(counts), "codebook use"))


def _explorer(run_dir: Path, est, data: RunData) -> Section:
    """Write the latent explorer next to the report, and the section linking to it."""
    try:
        write_explorer(run_dir, est, data.X_eval, data.y_eval, image_shape=data.image_shape,
                       feature_names=data.feature_names, where=data.eval_description)
    except (ValueError, RuntimeError) as e:
        return Section("explorer", "Latent explorer", text=f"The latent explorer could not be built ({_one_line(e)}).")
    return Section("explorer", "Latent explorer",
                   text=f"An interactive map of the same codes, in its own page written next to this one "
                        f"({EXPLORER_NAME}): hover a point to see that sample, move over empty space to see the code "
                        "there decoded live, in the page, by this model's decoder.",
                   link=(EXPLORER_NAME, "Open the latent explorer"))
