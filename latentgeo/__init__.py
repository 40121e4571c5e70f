"""latentgeo: Riemannian geometry of the latent spaces of deep generative models."""

from latentgeo import metrics, models

__version__ = "0.1.0"

__all__ = ["__version__", "metrics", "models"]
