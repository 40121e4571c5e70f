"""The experiments behind the ``latentgeo`` command: the demo and the seed papers reproduced."""

from latentgeo.experiments.demo import DemoSettings, run_demo
from latentgeo.experiments.rundir import RunDir, RunExistsError

__all__ = ["DemoSettings", "RunDir", "RunExistsError", "run_demo"]
