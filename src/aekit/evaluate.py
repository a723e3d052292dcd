"""Evaluate a fitted model: reconstruction error, ELBO, importance-weighted NLL, active units,
posterior collapse and codebook use.

:func:`evaluate` works on any registered model and reports what applies to it: reconstruction
metrics for every model; ELBO, per-dimension KL, active units and (on request) the
importance-weighted NLL of Burda et al. 2016 for variational models (vae, cvae, hvae);
codebook usage and perplexity for quantised models (vqvae). For a run folder
(an estimator and its data conversion), see :func:`aekit.run.evaluate_run`.

For data with known factors of variation (``Dataset.factors``, e.g. ``load_dataset("sprites")``)
the disentanglement of any code is measured by pure functions of the codes and the factors:
:func:`mig` (Chen et al. 2018), :func:`factorvae_score` (Kim & Mnih 2018), :func:`dci`
(Eastwood & Williams 2018), :func:`mutual_info_matrix`, and all of them at once by
:func:`disentanglement_metrics` (which :func:`evaluate_estimator` calls when given factors).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from . import losses
from ._disentangle import DCIScores, dci, disentanglement_metrics, factorvae_score, mig, mutual_info_matrix
from ._utils import as_source, take_labels, take_rows

__all__ = ["evaluate", "evaluate_estimator", "importance_weighted_nll", "MetricRow", "metric_rows", "psnr_peak",
           "ACTIVE_UNIT_THRESHOLD", "KL_ACTIVE_THRESHOLD", "DCIScores", "dci", "disentanglement_metrics",
           "factorvae_score", "mig", "mutual_info_matrix"]

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: unit u is active when Cov_x(E_q[z_u]) > 0.01


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    X,
    y=None,
    *,
    nll_samples: int = 0,
    batch_size: int = 1024,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a fitted model on X (in eval mode; the model's mode is restored afterwards).

    Parameters
    ----------
    model : a registered aekit model (``aekit.models``).
    X : array or tensor shaped ``(n, *model.config.input_shape)``; a ``np.memmap`` is read in batches.
    y : labels (n,), needed by conditional models (cvae).
    nll_samples : K, the importance samples per data point for the NLL estimate; 0 skips it.
        Cost: K decoder passes per sample (each data point is encoded once per chunk of samples).
    batch_size : rows per decoder pass. The NLL is batched over samples *and* data, so any K
        fits in memory: each pass holds at most ``batch_size`` (data point, sample) pairs.
    seed : seeds the model's noise (the ELBO's and the NLL's samples); same seed, same numbers.
    device : where to run; defaults to the model's device.
    progress : show a progress bar (with the time remaining) while the NLL is estimated.

    Returns
    -------
    dict with, for every model:

    - ``n_samples``: n.
    - ``recon_mse``: mean per-pixel (per-feature) squared error of ``model.reconstruct(x)``, the
      deterministic reconstruction (posterior mean for VAEs, quantised code for VQ-VAE).
    - ``recon_bce``: binary cross-entropy of that reconstruction in nats per sample (summed over
      pixels, the ELBO's units), only when X lies in [0, 1].
    - ``psnr``: 10 log10(peak^2 / recon_mse) in dB, peak 1.0 for data in [0, 1], else the data range.

    for variational models (``model.variational``: vae, cvae, hvae):

    - ``elbo``: mean ELBO per sample in nats (higher is better): -(recon + KL) from one posterior
      sample per data point with the analytic KL, whatever beta, warm-up or free bits training used.
    - ``kl_total``: mean KL(q || p) in nats over every stochastic layer: the KL inside the ELBO.
    - ``kl_per_dim``: mean KL(q(z_k|x) || N(0, 1)) of each latent dimension of the code (the top
      layer for hvae, whose posterior is the bottom-up estimate and prior N(0, I)).
    - ``active_units``: number of code dimensions with Cov_x(E_q[z_k | x]) > 0.01 (Burda et al.
      2016); ``latent_dim`` is the number of dimensions looked at.
    - ``posterior_collapse``: True when fewer than half the code's dimensions are active, with
      ``posterior_collapse_message`` saying so in words (empty string otherwise).
    - ``levels`` (hierarchical models only): per stochastic layer, bottom first, a dict with
      ``latent_dim``, ``kl`` (nats), ``kl_per_dim`` (KL(q(z_l | x, z_{l+1}) || p(z_l | z_{l+1})) per
      dimension, as in the ELBO) and ``active_units`` (E_q[z_l | x] taken along the posterior mean
      path); the last entry is the code's.
    - ``nll``, ``nll_samples``: when ``nll_samples`` > 0, the importance-weighted estimate
      -log (1/K sum_k exp(log w_k)) in nats per sample (see :func:`importance_weighted_nll`).
      It is an upper bound on the true NLL in expectation and tightens as K grows.

    for quantised models (``model.quantised``: vqvae), over the whole set:

    - ``codebook_usage``: fraction of codebook entries used at least once.
    - ``perplexity``: exp of the entropy of the code-use frequencies (K when all K entries are
      used equally, 1 when one entry takes everything).

    Examples
    --------
    >>> import torch
    >>> from aekit._registry import build_model
    >>> from aekit.evaluate import evaluate
    >>> model = build_model("vae", input_shape=(8,), latent_dim=2, hidden_dims=(16,))
    >>> X = torch.rand(64, 8)
    >>> r = evaluate(model, X, nll_samples=10)
    >>> sorted(k for k in r if k in ("elbo", "nll", "active_units", "recon_mse"))
    ['active_units', 'elbo', 'nll', 'recon_mse']
    >>> r["nll"] <= -r["elbo"] + 1.0  # the bound ordering, up to Monte Carlo noise
    True
    """
    _check_count("nll_samples", nll_samples, minimum=0)
    _check_count("batch_size", batch_size, minimum=1)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    src = as_source(X)
    ysrc = None if y is None else torch.as_tensor(np.asarray(y))
    n = len(src)
    if n < 1:
        raise ValueError("evaluate needs at least one sample")
    was_training, model_device = model.training, next(model.parameters()).device
    model.to(device).eval()
    try:
        result = _single_pass(model, src, ysrc, n, batch_size, seed, device)
        if nll_samples > 0:
            result["nll"] = -_mean_iw_bound(model, src, ysrc, nll_samples, batch_size, seed + 1, device, progress)
            result["nll_samples"] = nll_samples
    finally:
        model.to(model_device).train(was_training)
    return result


def _single_pass(model, src, ysrc, n, batch_size, seed, device) -> dict[str, Any]:
    """Every metric but the NLL, in one pass over the data."""
    variational, quantised = model.variational, model.quantised
    gen = torch.Generator(device=device).manual_seed(seed)
    kl_gen = torch.Generator(device=device).manual_seed(seed + 2)  # the lower layers' KLs need a draw
    sq_err = bce = elbo = 0.0
    lo, hi, n_features = math.inf, -math.inf, 0
    sums = None  # per level: [sum E_q[z], sum E_q[z]^2, sum KL], each (d_l,) float64
    code_counts = None  # (codebook_size,), for VQ-VAE
    for idx in torch.arange(n).split(batch_size):
        xb, yb = take_rows(src, idx, device), take_labels(ysrc, idx, device)  # (b, *input_shape)
        x_hat = model.reconstruct(xb, yb)  # (b, *input_shape)
        n_features = xb[0].numel()
        sq_err += float(losses.mse(x_hat, xb).sum())
        bce += float(losses.bce(x_hat, xb).sum())
        lo, hi = min(lo, float(xb.min())), max(hi, float(xb.max()))
        if variational:
            elbo += float(model.elbo(xb, yb, generator=gen).sum())
            drawn = model.posterior_levels(xb, yb, generator=kl_gen)  # the KLs of the ELBO
            means = model.posterior_levels(xb, yb, sample=False)  # E_q[z_l | x] along the mean path
            batch = [
                [m.mu_q.double().sum(0), m.mu_q.double().pow(2).sum(0), d.kl_per_dim().double().sum(0)]
                for d, m in zip(drawn, means)
            ]
            sums = batch if sums is None else [[a + b for a, b in zip(s, t)] for s, t in zip(sums, batch)]
        if quantised:
            codes = model.encode_indices(xb).reshape(-1)  # (b * M,)
            counts = torch.bincount(codes, minlength=model.config.codebook_size).double()
            code_counts = counts if code_counts is None else code_counts + counts
    mse = sq_err / (n * n_features)
    unit_range = lo >= 0.0 and hi <= 1.0
    peak = 1.0 if unit_range else hi - lo
    result: dict[str, Any] = {
        "n_samples": n,
        "recon_mse": mse,
        "psnr": 10.0 * math.log10(peak**2 / mse) if mse > 0 and peak > 0 else math.inf,
    }
    if unit_range:
        result["recon_bce"] = bce / n
    if variational:
        levels = [_latent_summary(*s, n) for s in sums]
        result.update(levels[-1])  # the code: the top layer
        result["kl_total"] = sum(sum(level["kl_per_dim"]) for level in levels)
        if model.hierarchical:
            result["levels"] = [
                {"latent_dim": lv["latent_dim"], "kl": sum(lv["kl_per_dim"]), "kl_per_dim": lv["kl_per_dim"],
                 "active_units": lv["active_units"]}
                for lv in levels
            ]
        result["elbo"] = elbo / n
    if quantised:
        freq = code_counts / code_counts.sum()  # (codebook_size,)
        result["codebook_usage"] = float((code_counts > 0).double().mean())
        result["perplexity"] = float(torch.exp(-torch.xlogy(freq, freq).sum()))
    return result


def _latent_summary(mu_sum, mu_sq_sum, kl_sum, n: int) -> dict[str, Any]:
    """Active units and posterior-collapse warning from running sums of posterior means."""
    mean = mu_sum / n
    variance = (mu_sq_sum / n - mean.pow(2)).clamp_min(0.0) * (n / max(n - 1, 1))  # (K,) unbiased
    k = len(variance)
    active = int((variance > ACTIVE_UNIT_THRESHOLD).sum())
    collapse = active < k / 2
    message = (
        f"posterior collapse: only {active} of {k} latent dimensions are active "
        f"(Cov_x(E_q[z]) > {ACTIVE_UNIT_THRESHOLD}); the decoder is ignoring the rest. Try KL warm-up, "
        "free bits, a smaller beta or a smaller latent_dim."
        if collapse
        else ""
    )
    return {
        "kl_per_dim": [float(v) for v in kl_sum / n],
        "latent_dim": k,
        "active_units": active,
        "posterior_collapse": collapse,
        "posterior_collapse_message": message,
    }


def _mean_iw_bound(model, src, ysrc, k: int, batch_size: int, seed: int, device, progress: bool = False) -> float:
    """Mean over the data of log (1/K sum_k w_k), batched over data points and samples."""
    gen = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    n = len(src)
    per_pass = max(1, batch_size // k)  # data points per decoder pass
    with _ProgressBar(n, f"NLL, K = {k}", progress) as bar:
        for idx in torch.arange(n).split(per_pass):
            xb, yb = take_rows(src, idx, device), take_labels(ysrc, idx, device)
            total += float(importance_weighted_nll(model, xb, yb, k, batch_size=batch_size, generator=gen).sum())
            bar.advance(len(idx))
    return -total / n


@torch.no_grad()
def importance_weighted_nll(
    model, x: torch.Tensor, y=None, n_samples: int = 1000, *, batch_size: int = 1024, generator=None
) -> torch.Tensor:
    """Importance-weighted NLL estimate per data point, -log (1/K sum_k exp(log w_k)), nats, (B,).

    log w_k = log p(x, z_k) - log q(z_k | x) with z_k ~ q(z|x) (``model.log_weights``); Burda et
    al. 2016. x is encoded once per chunk of samples; the K draws are decoded in chunks of at most
    ``batch_size`` rows (data points x samples, at least one sample per data point) and combined
    by a running logsumexp in float64, so memory does not grow with K. With K = 1 it is -ELBO
    (one-sample estimate); in expectation it decreases with K towards the true NLL.
    x: (B, *input_shape).
    """
    _check_count("n_samples", n_samples, minimum=1)
    b = x.shape[0]
    per_pass = max(1, batch_size // b)  # samples per decoder pass
    acc = torch.full((b,), -math.inf, dtype=torch.float64, device=x.device)  # running log sum_k w_k
    done = 0
    while done < n_samples:
        s = min(per_pass, n_samples - done)
        log_w = model.log_weights(x, y, s, generator=generator).double()  # (s, B)
        acc = torch.logaddexp(acc, torch.logsumexp(log_w, dim=0))
        done += s
    return -(acc - math.log(n_samples))


class _ProgressBar:
    """A rich progress bar over data points with the time remaining; does nothing when disabled."""

    def __init__(self, total: int, description: str, enabled: bool):
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("eta"), TimeRemainingColumn(), console=Console(stderr=True))
            self.task = self.bar.add_task(description, total=total)

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _check_count(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# -- a fitted estimator, and the metrics in words ---------------------------------------------------

KL_ACTIVE_THRESHOLD = 0.01  # nats: a latent dimension with less KL than this carries no information


def evaluate_estimator(estimator, X, y=None, *, nll_samples: int = 0, factors=None, factor_names=None,
                       progress: bool = False) -> dict[str, Any]:
    """:func:`evaluate` of a fitted aekit estimator's model on X as the estimator sees it (validated,
    reshaped, standardized when the estimator standardizes), plus ``units`` ("data" or
    "standardized") and, for variational models, the latent dimensions of the code whose KL is
    below ``KL_ACTIVE_THRESHOLD`` (``inactive_dims``). A conditional model is evaluated on the
    samples whose label it knows, with those labels. With ``factors`` (n, n_factors), the known
    factors of variation of X, the keys of :func:`disentanglement_metrics` of the estimator's
    codes (``transform``: the posterior mean for VAEs) are added. ``progress`` shows a progress
    bar while the NLL is estimated."""
    caps = estimator.capabilities()
    if nll_samples and not caps["variational"]:
        raise ValueError(f"the NLL needs a variational model (vae, cvae, hvae, iwae); {type(estimator).__name__} "
                         "has no likelihood")
    labels = None
    if factors is not None and len(factors) != len(X):
        raise ValueError(f"factors has {len(factors)} rows for {len(X)} samples")
    if caps["conditional"]:
        if y is None:
            raise ValueError("a conditional model is evaluated with labels, but the evaluation data has none")
        known = np.isin(y, estimator.classes_)
        X, labels = X[known], np.searchsorted(estimator.classes_, np.asarray(y)[known])
        factors = None if factors is None else np.asarray(factors)[known]
    result = evaluate(estimator.model_, estimator.to_model_input(X), labels, nll_samples=nll_samples,
                      seed=int(estimator.seed_), progress=progress)
    result["units"] = "standardized" if getattr(estimator, "mean_", None) is not None else "data"
    if "kl_per_dim" in result:  # (kl_total, over every stochastic layer, comes from evaluate)
        kl = np.asarray(result["kl_per_dim"])
        result["kl_threshold"] = KL_ACTIVE_THRESHOLD
        result["inactive_dims"] = [int(i) for i in np.flatnonzero(kl < KL_ACTIVE_THRESHOLD)]
    if factors is not None:
        codes = estimator.transform(X, np.asarray(y)[known]) if caps["conditional"] else estimator.transform(X)
        result.update(disentanglement_metrics(codes, factors, factor_names, random_state=int(estimator.seed_)))
    return result


def psnr_peak(X) -> float:
    """PSNR's peak value as :func:`evaluate` takes it: 1 for data in [0, 1], else the data's range."""
    lo, hi = float(np.min(X)), float(np.max(X))
    return 1.0 if lo >= 0 and hi <= 1 else (hi - lo) or 1.0


class MetricRow(NamedTuple):
    """One metric in words: its key in the result dict, a label, the formatted value and its unit."""

    key: str
    label: str
    value: str
    unit: str


def metric_rows(m: dict[str, Any], *, detail: bool = True) -> list[MetricRow]:
    """The metrics of an evaluation result in words, one row for each present, in a fixed order:
    the one formatter the CLI and the report share. ``detail=False`` leaves out per-dimension lists."""

    def num(v, spec):
        return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)

    units = ", standardized units" if m.get("units") == "standardized" else ""
    rows = [MetricRow("recon_mse", "recon MSE", num(m.get("recon_mse"), ".4g"), f"mean squared error per value{units}"),
            MetricRow("psnr", "PSNR", num(m.get("psnr"), ".2f"), "dB")]
    if "recon_bce" in m:
        rows.append(MetricRow("recon_bce", "recon BCE", num(m["recon_bce"], ".2f"), "nats per sample"))
    if "elbo" in m:
        rows.append(MetricRow("elbo", "ELBO", num(m["elbo"], ".2f"), "nats per sample (higher is better)"))
    if "nll" in m:
        rows.append(MetricRow("nll", "NLL", num(m["nll"], ".2f"),
                              f"nats per sample (K={m.get('nll_samples')}; an upper bound, <= -ELBO)"))
    if "kl_total" in m:
        rows.append(MetricRow("kl_total", "KL", num(m["kl_total"], ".3g"), "nats"))
    if "kl_per_dim" in m and detail:
        rows.append(MetricRow("kl_per_dim", "KL per dimension", " ".join(num(v, ".3g") for v in m["kl_per_dim"]), "nats"))
    if "active_units" in m:
        rows.append(MetricRow("active_units", "active units", f"{m['active_units']}/{m['latent_dim']}",
                              f"Cov_x(E_q[z]) > {ACTIVE_UNIT_THRESHOLD}"))
    for i, level in enumerate(m.get("levels", ())):  # hierarchical models, bottom first
        rows.append(MetricRow(f"kl_level_{i + 1}", f"layer {i + 1} KL", num(level["kl"], ".3g"),
                              f"nats; {level['active_units']}/{level['latent_dim']} active units"))
    if "mig" in m:
        rows.append(MetricRow("mig", "MIG", num(m["mig"], ".3f"),
                              "mutual information gap, Chen et al. 2018 (1 = one code dimension per factor)"))
        if detail and m.get("mig_per_factor"):
            rows.append(MetricRow("mig_per_factor", "MIG per factor",
                                  ", ".join(f"{k} {num(v, '.2f')}" for k, v in m["mig_per_factor"].items()), ""))
        rows.append(MetricRow("factorvae_score", "FactorVAE metric", num(m.get("factorvae_score"), ".3f"),
                              "majority-vote accuracy, Kim & Mnih 2018 (chance = 1/factors)"))
        rows.append(MetricRow("dci_disentanglement", "DCI disentanglement", num(m.get("dci_disentanglement"), ".3f"),
                              "Eastwood & Williams 2018 (1 = each code dimension informs one factor)"))
        if detail:
            rows.append(MetricRow("dci_completeness", "DCI completeness", num(m.get("dci_completeness"), ".3f"),
                                  "1 = each factor is told by one code dimension"))
            rows.append(MetricRow("dci_informativeness", "DCI informativeness", num(m.get("dci_informativeness"), ".3f"),
                                  "held-out R^2 of the factors predicted from the code"))
    if "codebook_usage" in m:
        rows.append(MetricRow("codebook_usage", "codebook used", f"{100 * m['codebook_usage']:.0f}%", "of the entries"))
        rows.append(MetricRow("perplexity", "code perplexity", num(m.get("perplexity"), ".1f"), "of the code use"))
    return rows
