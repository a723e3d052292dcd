"""aekit: every kind of autoencoder, practical."""

__version__ = "0.1.0"
