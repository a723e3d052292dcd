"""Model families, one per file. Importing this package registers them all."""

from .ae import AE, AEConfig
from .base import AEOutput, Autoencoder, ModelConfig
from .contractive import ContractiveAE, ContractiveConfig
from .cvae import CVAE, CVAEConfig
from .denoising import DenoisingAE, DenoisingConfig
from .hvae import HVAE, HVAEConfig
from .iwae import IWAE, IWAEConfig
from .sparse import SparseAE, SparseConfig
from .vae import VAE, VAEConfig
from .vqvae import VQVAE, VQVAEConfig

__all__ = [
    "AEOutput", "Autoencoder", "ModelConfig",
    "AE", "AEConfig", "DenoisingAE", "DenoisingConfig", "SparseAE", "SparseConfig",
    "ContractiveAE", "ContractiveConfig", "VAE", "VAEConfig", "CVAE", "CVAEConfig",
    "HVAE", "HVAEConfig", "IWAE", "IWAEConfig", "VQVAE", "VQVAEConfig",
]
