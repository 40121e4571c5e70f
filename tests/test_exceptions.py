"""latentgeo's error and warning classes, and warn_once: once per owner and text."""

from __future__ import annotations

import gc
import inspect
import warnings
from collections.abc import Callable

import pytest
import torch

from latentgeo.analysis import geodesic_distances
from latentgeo.exceptions import (
    LatentgeoError,
    LatentgeoWarning,
    NumericsWarning,
    PerformanceWarning,
    callable_owner,
    user_stacklevel,
    warn,
    warn_once,
    warn_slower_path,
)
from latentgeo.solvers import SplineEnergy, exp_map
from latentgeo.testing import StereographicSphere


class Owner:
    pass


def test_warnings_can_be_filtered_by_class() -> None:
    assert issubclass(PerformanceWarning, LatentgeoWarning)
    assert issubclass(NumericsWarning, LatentgeoWarning)
    assert issubclass(LatentgeoWarning, UserWarning) and issubclass(LatentgeoError, Exception)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        with pytest.raises(PerformanceWarning, match="slow"):
            warn_once(Owner(), PerformanceWarning("slow"))


def _caught(*calls: tuple[object, LatentgeoWarning]) -> list[bool]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shown = [warn_once(owner, warning) for owner, warning in calls]
    assert len(caught) == sum(shown)
    return shown


def test_once_per_owner_text_and_class() -> None:
    a, b = Owner(), Owner()
    shown = _caught(
        (a, PerformanceWarning("x")),
        (a, PerformanceWarning("x")),  # the same: not again
        (a, PerformanceWarning("y")),  # another text
        (a, NumericsWarning("x")),  # another class
        (b, PerformanceWarning("x")),  # another owner
    )
    assert shown == [True, False, True, True, True]


def test_slower_paths_are_named_by_module_function_or_method_owner_once_each() -> None:
    class Metric:
        def push(self) -> None: ...

    def decode(z: torch.Tensor) -> torch.Tensor:
        return z

    module, model, t = torch.nn.Linear(1, 1), Metric(), torch.zeros(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        owners = (module, decode, model.push, torch.sin, t.add, module, decode, model.push, t.add)
        shown = [warn_slower_path(o, "slow") for o in owners]
    # once per owner: a bound method (a new object at every access) by its object
    assert shown == [True] * 5 + [False] * 4
    assert callable_owner(model.push) is model and callable_owner(t.add) is t
    assert callable_owner(torch.sin) is torch.sin and callable_owner(decode) is decode
    names = [str(w.message) for w in caught]
    assert names[0] == "Linear: slow" and names[1].endswith("<locals>.decode: slow")
    assert names[2].endswith("<locals>.Metric.push: slow")
    assert names[3].endswith("sin: slow") and names[4] == "Tensor.add: slow"
    assert all(w.category is PerformanceWarning for w in caught)


def test_a_key_makes_messages_with_other_figures_the_same() -> None:
    owner = Owner()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shown = [
            warn_once(owner, PerformanceWarning("over by 3 bytes"), key="over"),
            warn_once(owner, PerformanceWarning("over by 5 bytes"), key="over"),
            warn_once(owner, PerformanceWarning("over by 5 bytes")),  # no key: its text
        ]
    assert shown == [True, False, True]
    assert [str(w.message) for w in caught] == ["over by 3 bytes", "over by 5 bytes"]


def test_owners_that_cannot_be_weakly_referenced_and_freed_owners() -> None:
    key = (1, 2)  # a tuple: not weakly referenceable, kept by id
    assert _caught((key, NumericsWarning("t")), (key, NumericsWarning("t"))) == [True, False]
    owner = Owner()
    assert _caught((owner, PerformanceWarning("f"))) == [True]
    del owner
    gc.collect()
    assert _caught((Owner(), PerformanceWarning("f"))) == [True]  # a new owner hears it


def test_the_warning_points_at_the_caller_of_the_warning_function() -> None:
    def library_function(owner: object) -> None:
        warn_once(owner, PerformanceWarning("here"), stacklevel=3)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library_function(Owner())
    assert caught[0].filename == __file__


def _record(call: Callable[[], object]) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, LatentgeoWarning)]


def test_warnings_from_deep_calls_point_at_the_users_line() -> None:
    """However deep in latentgeo (or in torch calling back into it) a warning is raised, it
    names the user's file and line: the distances' count (analysis → solvers), the ODE's
    kink warning (solvers → metrics), a plain ``warn`` from a test-local function."""
    relu = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    line = inspect.currentframe().f_lineno  # type: ignore[union-attr]
    kinks = _record(lambda: exp_map(relu, z, 0.1 * z))  # line + 1
    stop = SplineEnergy(max_iter=1)
    dist = _record(lambda: geodesic_distances(StereographicSphere(), z, -z, method=stop))  # + 3
    here = _record(lambda: warn(NumericsWarning("plain")))  # line + 4
    for caught, offset in ((kinks, 1), (dist, 3), (here, 4)):
        assert len(caught) == 1, [str(w.message) for w in caught]
        assert (caught[0].filename, caught[0].lineno) == (__file__, line + offset)
    assert "kinks" in str(kinks[0].message) and "did not converge" in str(dist[0].message)


def test_user_stacklevel_counts_the_frames_inside_latentgeo() -> None:
    assert user_stacklevel() == 1  # called from here: this test's frame is the user's


def test_a_doctest_in_a_latentgeo_module_is_the_users_frame() -> None:
    """Doctests run in their module's globals (``__name__`` ``latentgeo....``): still the
    user's code, so the walk stops there, not in ``doctest.py``."""
    code = compile("level = user_stacklevel()", "<doctest latentgeo.fake[0]>", "exec")
    namespace = {"__name__": "latentgeo.fake", "user_stacklevel": user_stacklevel}
    exec(code, namespace)
    assert namespace["level"] == 1
