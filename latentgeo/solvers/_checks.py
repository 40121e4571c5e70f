"""Checks of numeric options at the call (they live in :mod:`latentgeo._options`, shared by
every layer)."""

from latentgeo._options import check_int, check_number, check_optional_number

__all__ = ["check_int", "check_number", "check_optional_number"]
