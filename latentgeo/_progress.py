"""A progress bar for iterative solvers: shown on a terminal only when asked for.

Library code never prints; a solver run with ``progress=True`` shows a tqdm bar of
its iterations (``tqdm.auto``: a widget in notebooks), cleared when it ends
(``leave=False``), so that logs keep only what the caller writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Update", "iteration_bar"]

Update = Callable[..., None]  # update(done, **postfix)


@contextmanager
def iteration_bar(enabled: bool, total: int, desc: str) -> Iterator[Update | None]:
    """A bar of ``total`` iterations while the block runs, and the function that moves it:
    ``update(done, **postfix)`` sets the iterations done and the figures beside them.

    Args:
        enabled: show the bar (else ``None`` is yielded and nothing is shown).
        total: the most iterations.
        desc: the bar's label.

    Example:
        >>> with iteration_bar(False, 10, "log maps") as update:
        ...     update is None
        True
    """
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, leave=False)

    def update(done: int, **postfix: object) -> None:
        bar.n = done
        bar.set_postfix(**postfix)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
