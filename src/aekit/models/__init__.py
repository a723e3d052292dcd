"""Model families, one per file: a family is a module here (or a plugin, see ``aekit._registry``)
defining its Config dataclass and a model class decorated with ``@register("name")``. For plugin
authors, this package exports what a family file needs: ``register``, ``option``, the base classes."""

from .._registry import register
from .aae import AAE, AAEConfig
from .ae import AE, AEConfig
from .base import AEOutput, Autoencoder, ModelConfig, option
from .beta_tcvae import BetaTCVAE, BetaTCVAEConfig
from .contractive import ContractiveAE, ContractiveConfig
from .cvae import CVAE, CVAEConfig
from .denoising import DenoisingAE, DenoisingConfig
from .factorvae import FactorVAE, FactorVAEConfig
from .hvae import HVAE, HVAEConfig
from .infovae import InfoVAE, InfoVAEConfig
from .iwae import IWAE, IWAEConfig
from .masked import MaskedAE, MaskedConfig
from .rae import RAE, RAEConfig
from .sparse import SparseAE, SparseConfig
from .vae import VAE, VAEConfig
from .vampprior import VampPriorConfig, VampPriorVAE
from .vqvae import VQVAE, VQVAEConfig
from .wae import WAE, WAEConfig

__all__ = [
    "AEOutput", "Autoencoder", "ModelConfig", "option", "register",
    "AE", "AEConfig", "DenoisingAE", "DenoisingConfig", "SparseAE", "SparseConfig",
    "ContractiveAE", "ContractiveConfig", "VAE", "VAEConfig", "CVAE", "CVAEConfig",
    "HVAE", "HVAEConfig", "IWAE", "IWAEConfig", "VQVAE", "VQVAEConfig", "BetaTCVAE", "BetaTCVAEConfig",
    "FactorVAE", "FactorVAEConfig",
    "InfoVAE", "InfoVAEConfig", "VampPriorVAE", "VampPriorConfig", "WAE", "WAEConfig", "RAE", "RAEConfig",
    "AAE", "AAEConfig", "MaskedAE", "MaskedConfig",
]
