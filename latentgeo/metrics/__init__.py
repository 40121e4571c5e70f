"""The metric protocol and every metric latentgeo knows.

See :class:`Metric` for the protocol and :func:`as_metric` for how decoders
become metrics.
"""

from latentgeo.metrics.base import Metric, ScaledMetric, SumMetric
from latentgeo.metrics.checks import check_eval_mode
from latentgeo.metrics.christoffel import christoffel_symbols
from latentgeo.metrics.dispatch import MetricLike, as_metric, decoder_metric, expected_metric
from latentgeo.metrics.embeddings import (
    ConcatEmbedding,
    DecoderEmbedding,
    embedding_module,
    output_embedding,
)
from latentgeo.metrics.ensemble import MeanMetric
from latentgeo.metrics.explicit import ExplicitMetric
from latentgeo.metrics.feature import FeatureMetric, feature_metric
from latentgeo.metrics.local_pca import LocalPCAMetric
from latentgeo.metrics.measures import (
    condition_number,
    log_volume_element,
    principal_directions,
    volume_element,
)
from latentgeo.metrics.outputs import UnsupportedOutput, select_output
from latentgeo.metrics.pullback import PullbackMetric
from latentgeo.metrics.report import MetricCheck
from latentgeo.metrics.rhvae import RHVAEMetric
from latentgeo.metrics.terms import GeodesicTerms, christoffel_terms

__all__ = [
    "ConcatEmbedding",
    "DecoderEmbedding",
    "ExplicitMetric",
    "FeatureMetric",
    "GeodesicTerms",
    "LocalPCAMetric",
    "MeanMetric",
    "Metric",
    "MetricCheck",
    "MetricLike",
    "PullbackMetric",
    "RHVAEMetric",
    "ScaledMetric",
    "SumMetric",
    "UnsupportedOutput",
    "as_metric",
    "check_eval_mode",
    "christoffel_symbols",
    "christoffel_terms",
    "condition_number",
    "decoder_metric",
    "embedding_module",
    "expected_metric",
    "feature_metric",
    "log_volume_element",
    "output_embedding",
    "principal_directions",
    "select_output",
    "volume_element",
]
