"""Pictures of latent geometry (matplotlib, headless).

* fields on a latent grid: :func:`volume_map`, :func:`log_volume_map`,
  :func:`uncertainty_map` (ensemble disagreement or Gaussian ``σ``);
* drawing: :func:`plot_background`, :func:`plot_points`, :func:`plot_curves`,
  :func:`plot_straight_lines`, :func:`plot_solved_curves` (non-converged
  curves dashed and counted), :func:`plot_indicatrices`, and the one-call
  :func:`plot_latent_space`;
* the seed papers' histograms: :func:`plot_cv_histograms`,
  :func:`plot_relative_improvement`;
* geometry: :func:`plot_curvature` (curvature maps), :func:`plot_density`
  (a LAND's or a Gaussian mixture's density), :func:`plot_interpolations`
  (decoded straight-line vs geodesic rows);
* :func:`save_figure` writes atomically.
"""

from latentgeo.viz.curvature import plot_curvature, plot_density
from latentgeo.viz.curves import plot_curves, plot_solved_curves, plot_straight_lines
from latentgeo.viz.fields import (
    Extent,
    bounds_around,
    decoder_uncertainty,
    evaluate_on_grid,
    latent_grid,
    log_volume_map,
    uncertainty_map,
    volume_map,
)
from latentgeo.viz.histograms import plot_cv_histograms, plot_relative_improvement
from latentgeo.viz.interpolation import plot_interpolations
from latentgeo.viz.io import save_figure
from latentgeo.viz.latent import (
    indicatrix_points,
    new_figure,
    plot_background,
    plot_indicatrices,
    plot_latent_space,
    plot_points,
)

__all__ = [
    "Extent",
    "bounds_around",
    "decoder_uncertainty",
    "evaluate_on_grid",
    "indicatrix_points",
    "latent_grid",
    "log_volume_map",
    "new_figure",
    "plot_background",
    "plot_curvature",
    "plot_curves",
    "plot_cv_histograms",
    "plot_density",
    "plot_indicatrices",
    "plot_interpolations",
    "plot_latent_space",
    "plot_points",
    "plot_relative_improvement",
    "plot_solved_curves",
    "plot_straight_lines",
    "save_figure",
    "uncertainty_map",
    "volume_map",
]
