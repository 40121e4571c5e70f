"""The experiments behind the ``latentgeo`` command: the demo and the seed papers reproduced.

One module per experiment: :mod:`.demo`, :mod:`.ensembles_cv` (Syrota et al.),
:mod:`.relative_improvement` (Michelis et al.), :mod:`.kmeans` (Arvanitidis et
al.); :mod:`.common` holds what they share and :mod:`.rundir` the atomic run
folder. The command-line adaptors live in :mod:`latentgeo.cli`.
"""

from latentgeo.experiments.demo import DemoSettings, run_demo
from latentgeo.experiments.ensembles_cv import CVSettings, run_ensembles_cv
from latentgeo.experiments.kmeans import KMeansSettings, run_kmeans
from latentgeo.experiments.relative_improvement import RISettings, run_relative_improvement
from latentgeo.experiments.rundir import RunDir, RunExistsError

__all__ = [
    "CVSettings",
    "DemoSettings",
    "KMeansSettings",
    "RISettings",
    "RunDir",
    "RunExistsError",
    "run_demo",
    "run_ensembles_cv",
    "run_kmeans",
    "run_relative_improvement",
]
