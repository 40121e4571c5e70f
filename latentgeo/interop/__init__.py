"""Models trained with other libraries, as latentgeo metrics.

* :mod:`latentgeo.interop.pythae`: pythae autoencoders (``as_metric(model)``,
  ``as_metric(model.decoder)``) and the RHVAE's learned metric. pythae is an
  optional dependency (``pip install "latentgeo[pythae]"``), imported only when
  a pythae object is used; importing this package registers the rules.
"""

from latentgeo.interop.pythae import is_pythae_model, pythae_metric

__all__ = ["is_pythae_model", "pythae_metric"]
