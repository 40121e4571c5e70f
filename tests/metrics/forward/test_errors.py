"""The engine's errors: named, and out-of-memory told apart."""

from __future__ import annotations

import torch

from latentgeo.exceptions import LatentgeoError
from latentgeo.metrics.forward import UnsupportedOperation, is_out_of_memory


def test_unsupported_operation_names_the_operation() -> None:
    err = UnsupportedOperation("torch.dstack", "it takes a tuple of tensors")
    assert isinstance(err, LatentgeoError) and err.operation == "torch.dstack"
    assert str(err) == "torch.dstack: it takes a tuple of tensors"


def test_out_of_memory_is_recognised() -> None:
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory."))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_out_of_memory(RuntimeError("vmap: It looks like you're calling .item()"))
    assert not is_out_of_memory(ValueError("out of range"))
