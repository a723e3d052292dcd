"""The named estimators: a public name, a summary and a runnable example per family. Their
parameters (and the Parameters section of each docstring) come from the family's Config, their
methods from its capabilities (:func:`aekit.estimators.base.bases_for`)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .base import bases_for

__all__ = [
    "AutoEncoder",
    "DenoisingAutoEncoder",
    "SparseAutoEncoder",
    "ContractiveAutoEncoder",
    "MaskedAutoEncoder",
    "VAE",
    "ConditionalVAE",
    "HierarchicalVAE",
    "IWAE",
    "VQVAE",
    "BetaTCVAE",
    "FactorVAE",
    "InfoVAE",
    "VampPriorVAE",
    "WassersteinAutoEncoder",
    "RegularizedAutoEncoder",
    "AdversarialAutoEncoder",
]


class AutoEncoder(*bases_for("ae")):
    """Undercomplete / stacked autoencoder on a PCA base: never worse than PCA by default.

    By default (``linear_part="auto"`` with the MSE loss) the code and the reconstruction are
    PCA's plus what the networks add, z = W^T(x - m) + f(x) and x_hat = m + W z + g(z), where m
    and W are the training data's mean and top ``latent_dim`` principal axes and the networks
    f, g start at zero. Training starts exactly at PCA's reconstruction error and lowers it;
    early stopping (on by default for this estimator) keeps the weights with the lowest
    validation error, the starting PCA ones included. What you get: ``transform`` gives a code
    whose reconstruction error on held-out data is at most PCA's (up to the difference between
    the validation split and your data), equal to PCA's where the networks find nothing to add
    and lower where the data are nonlinear. ``linear_part="none"`` gives the plain network;
    ``activation=None`` with ``hidden_dims=()`` and ``linear_part="none"`` a linear model, which
    recovers PCA's subspace. Fitted models expose ``transform`` (the code),
    ``inverse_transform``, ``reconstruct`` and ``score_samples`` (minus the reconstruction loss).

    Examples
    --------
    >>> from aekit import AutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> ae = AutoEncoder(latent_dim=8, epochs=5, random_state=0).fit(X)
    >>> ae.transform(X[:3]).shape
    (3, 8)
    """

    _model = "ae"


class DenoisingAutoEncoder(*bases_for("denoising")):
    """Denoising autoencoder: trained to map corrupted X back to clean X (Vincent et al. 2008).

    Corruption is applied only in training; salt-and-pepper noise
    uses each feature's extremes in the training data (an image channel's pixels share one
    range). With a ``noise_level`` range (the default, 0 to 0.5), each training sample draws its
    own level, so one model serves every level in it, clean inputs included. The AE's PCA base
    applies here too (``early_stopping`` keeps FitSettings' default, False).

    What you get: ``denoise(X_noisy)`` is the clean estimate (with ``fusion``, each noisy value
    combined with its decoded value by a small network shared by all features, so detail the
    noise spared is kept); ``reconstruct`` is decode(encode(X)), the classic DAE's estimate;
    ``transform`` the code, learnt from corrupted inputs; ``score_samples`` minus the code's
    reconstruction error.

    Examples
    --------
    >>> from aekit import DenoisingAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> dae = DenoisingAutoEncoder(noise="masking", noise_level=(0.1, 0.5), epochs=5, random_state=0).fit(X)
    >>> dae.denoise(X[:2]).shape, dae.reconstruct(X[:2]).shape
    ((2, 64), (2, 64))
    """

    _model = "denoising"

    def denoise(self, X):
        """Clean estimate of noisy X, in X's layout: the fused estimate (``fusion=True``) or
        ``reconstruct(X)``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or images, as in ``fit``

        Returns
        -------
        ndarray, the same shape as X
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        with torch.no_grad():
            out = [self._from_model(self.model_.denoise(xb)) for _, xb in self._enumerate(X)]
        return np.concatenate(out)


class SparseAutoEncoder(*bases_for("sparse")):
    """Sparse autoencoder: L1 on the code, KL/L1/L2 rate sparsity per layer, or k-sparse codes.

    Examples
    --------
    >>> from aekit import SparseAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> sae = SparseAutoEncoder(sparsity="topk", k=3, epochs=5, random_state=0).fit(X)
    >>> int((sae.transform(X[:1]) != 0).sum())
    3
    """

    _model = "sparse"


class ContractiveAutoEncoder(*bases_for("contractive")):
    """Contractive autoencoder: adds contractive_weight * ||d code / d x||_F^2, computed exactly.

    Examples
    --------
    >>> from aekit import ContractiveAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> cae = ContractiveAutoEncoder(epochs=3, random_state=0).fit(X)
    >>> "contractive" in cae.history_[-1]
    True
    """

    _model = "contractive"


class MaskedAutoEncoder(*bases_for("masked")):
    """Autoencoder for incomplete data: NaNs in X are missing values (the model behind
    :class:`aekit.apps.AutoencoderImputer`).

    The encoder sees the observed values and the mask of which entries are observed; training
    hides a further share of the observed entries and scores the reconstruction on observed
    entries only, so ``reconstruct`` fills NaNs with an estimate of E[missing | observed] in one
    pass. ``fit``, ``transform``, ``reconstruct`` and ``score_samples`` accept NaNs (infinities
    are still errors); standardization uses the observed entries.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import MaskedAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> X_missing = np.where(np.random.default_rng(0).random(X.shape) < 0.25, np.nan, X)
    >>> mae = MaskedAutoEncoder(epochs=5, random_state=0).fit(X_missing)
    >>> bool(np.isnan(mae.reconstruct(X_missing)).any())
    False
    """

    _model = "masked"


class VAE(*bases_for("vae")):
    """Variational autoencoder (loss = -ELBO in nats per sample).

    ``transform`` gives the posterior mean, ``score_samples`` the ELBO, ``sample`` decodes prior draws.

    Examples
    --------
    >>> from aekit import VAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> vae = VAE(latent_dim=2, epochs=5, random_state=0).fit(X)
    >>> vae.transform(X[:4]).shape, vae.sample(3, random_state=0).shape
    ((4, 2), (3, 64))
    """

    _model = "vae"


class ConditionalVAE(*bases_for("cvae")):
    """Conditional VAE: labels y (any hashable class values) condition encoder and decoder.

    ``fit(X, y)`` needs y. ``transform``/``reconstruct``/``score_samples`` use y when given;
    without it, each sample's label is inferred as the class with the highest ELBO (``predict``).
    ``sample(n, y=label)`` generates from one class (or n labels): by default it decodes codes
    drawn from a Gaussian fitted per class to the training codes after training
    (``sample_codes="fitted"``; ``"prior"`` draws from N(0, I)).

    Examples
    --------
    >>> from aekit import ConditionalVAE
    >>> from aekit.datasets import load_dataset
    >>> d = load_dataset("digits")
    >>> cvae = ConditionalVAE(epochs=3, random_state=0).fit(d.X.reshape(-1, 64), d.y)
    >>> cvae.sample(2, y=7, random_state=0).shape
    (2, 64)
    """

    _model = "cvae"


class HierarchicalVAE(*bases_for("hvae")):
    """Hierarchical (ladder) VAE: stochastic layers ``lower_latent_dims`` below a top layer of size
    ``latent_dim``; KL is reported per level (kl_1, kl_2, ...).

    Examples
    --------
    >>> from aekit import HierarchicalVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> hvae = HierarchicalVAE(latent_dim=4, lower_latent_dims=(16,), epochs=3, random_state=0).fit(X)
    >>> sorted(k for k in hvae.history_[-1] if k.startswith("kl_"))
    ['kl_1', 'kl_2']
    """

    _model = "hvae"


class IWAE(*bases_for("iwae")):
    """Importance-weighted autoencoder (Burda et al. 2016): a VAE trained on the k-sample
    importance-weighted bound instead of the ELBO.

    ``k`` importance samples per data point tighten the bound (k = 1 is a VAE); a step costs about
    k decoder passes per sample. ``free_bits`` must stay 0; ``kl_warmup_epochs`` anneals the bound.

    Examples
    --------
    >>> from aekit import IWAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> iwae = IWAE(k=5, latent_dim=4, epochs=3, random_state=0).fit(X)
    >>> sorted(k for k in iwae.history_[-1] if k in ("iwae", "kl", "recon"))
    ['iwae', 'kl', 'recon']
    """

    _model = "iwae"


class VQVAE(*bases_for("vqvae")):
    """Vector-quantised VAE: ``latent_dim / embedding_dim`` code vectors per sample, each one of
    ``codebook_size`` learned entries. Sampling draws code indices from a per-position
    categorical prior fitted after training.

    Examples
    --------
    >>> from aekit import VQVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> vq = VQVAE(codebook_size=32, epochs=3, random_state=0).fit(X)
    >>> vq.sample(2, random_state=0).shape
    (2, 64)
    """

    _model = "vqvae"


class BetaTCVAE(*bases_for("beta_tcvae")):
    """beta-TCVAE (Chen et al. 2018): a VAE whose KL is split and reweighted; total correlation by ``beta``.

    The KL term becomes index-code mutual information, total correlation and dimension-wise KL
    (minibatch-weighted sampling), weighted ``alpha``, ``beta`` and ``gamma``; a heavier
    total-correlation weight favours independent code dimensions. ``score_samples`` is the ELBO
    (analytic KL). The history reports ``mi``, ``tc`` and ``dwkl``.

    Examples
    --------
    >>> from aekit import BetaTCVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> tcvae = BetaTCVAE(latent_dim=4, beta=6.0, epochs=3, random_state=0).fit(X)
    >>> sorted(k for k in tcvae.history_[-1] if k in ("mi", "tc", "dwkl"))
    ['dwkl', 'mi', 'tc']
    """

    _model = "beta_tcvae"


class FactorVAE(*bases_for("factorvae")):
    """FactorVAE (Kim & Mnih 2018): a VAE plus ``gamma`` times a discriminator's total-correlation estimate.

    The discriminator tells codes from dimension-shuffled codes; its mean logit estimates the total
    correlation (the density-ratio trick). It trains beside the model in its own parameter group.
    ``score_samples`` is the ELBO.

    Examples
    --------
    >>> from aekit import FactorVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> fvae = FactorVAE(latent_dim=4, gamma=10.0, epochs=3, random_state=0).fit(X)
    >>> sorted(k for k in fvae.history_[-1] if k in ("tc", "discriminator"))
    ['discriminator', 'tc']
    """

    _model = "factorvae"


class InfoVAE(*bases_for("infovae")):
    """InfoVAE (Zhao et al. 2019): a VAE plus ``mmd_weight`` times the MMD between posterior and prior draws.

    The maximum mean discrepancy (rbf or imq kernel) keeps the aggregate of the codes spread like
    the prior. ``score_samples`` is the ELBO.

    Examples
    --------
    >>> from aekit import InfoVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> info = InfoVAE(latent_dim=4, kernel="imq", epochs=3, random_state=0).fit(X)
    >>> info.sample(2, random_state=0).shape
    (2, 64)
    """

    _model = "infovae"


class VampPriorVAE(*bases_for("vampprior")):
    """VAE with a VampPrior (Tomczak & Welling 2018): the prior mixes the posteriors at learned pseudo-inputs.

    ``n_pseudo_inputs`` components. The ELBO, the importance-weighted NLL and sampling use the
    mixture; the KL is a one-sample estimate.

    Examples
    --------
    >>> from aekit import VampPriorVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> vamp = VampPriorVAE(latent_dim=4, n_pseudo_inputs=50, epochs=3, random_state=0).fit(X)
    >>> vamp.model_.pseudo_inputs.shape
    torch.Size([50, 64])
    """

    _model = "vampprior"


class WassersteinAutoEncoder(*bases_for("wae")):
    """Wasserstein autoencoder (Tolstikhin et al. 2018): reconstruction plus the MMD of the codes to N(0, I).

    A deterministic encoder; ``mmd_weight`` weighs the maximum mean discrepancy (imq or rbf
    kernel). ``sample`` decodes prior draws.

    Examples
    --------
    >>> from aekit import WassersteinAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> wae = WassersteinAutoEncoder(latent_dim=4, epochs=3, random_state=0).fit(X)
    >>> wae.sample(3, random_state=0).shape
    (3, 64)
    """

    _model = "wae"


class RegularizedAutoEncoder(*bases_for("rae")):
    """Regularised autoencoder, RAE-L2 (Ghosh et al. 2020): penalised codes and decoder, ex-post Gaussian mixture.

    A deterministic autoencoder with a code penalty and an L2 penalty on the decoder; after
    training a Gaussian mixture of ``n_components`` is fitted to the training codes, and
    ``sample`` decodes draws from it.

    Examples
    --------
    >>> from aekit import RegularizedAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> rae = RegularizedAutoEncoder(latent_dim=4, epochs=3, random_state=0).fit(X)
    >>> rae.model_.gmm_weights.shape, rae.sample(3, random_state=0).shape
    (torch.Size([10]), (3, 64))
    """

    _model = "rae"


class AdversarialAutoEncoder(*bases_for("aae")):
    """Adversarial autoencoder (Makhzani et al. 2016): codes matched to N(0, I) by a discriminator.

    A deterministic encoder whose codes a discriminator tries to tell from N(0, I) draws while the
    encoder learns to fool it (weight ``adversarial_weight``); ``sample`` decodes prior draws. The
    discriminator trains beside the model in its own parameter group.

    Examples
    --------
    >>> from aekit import AdversarialAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> aae = AdversarialAutoEncoder(latent_dim=4, epochs=3, random_state=0).fit(X)
    >>> aae.sample(3, random_state=0).shape
    (3, 64)
    """

    _model = "aae"
