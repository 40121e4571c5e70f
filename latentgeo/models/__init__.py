"""Decoders and models whose latent geometry latentgeo measures."""

from latentgeo.models.ensemble import EnsembleDecoder

__all__ = ["EnsembleDecoder"]
