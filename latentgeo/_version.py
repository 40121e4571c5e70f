"""The version of latentgeo (one place; ``latentgeo.__version__``)."""

__version__ = "0.1.0"
