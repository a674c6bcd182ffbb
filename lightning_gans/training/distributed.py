"""Cross-rank pairing for relativistic losses under DDP.

With `gather_logits=True` every rank all-gathers D(real) and D(fake) (with
gradients) and evaluates the loss on the global batch, so an all-pairs
estimator averages over all (W·N)·(W·M) pairs, exactly as one process would.

Gradient scaling: every rank computes the same global loss L. The backward of
`torch.distributed.nn.functional.all_gather` sums, over ranks, the gradient each
rank computed for this rank's slice, giving W·∂L/∂T_local; DDP then averages
parameter gradients over the W ranks (÷W). The result is exactly ∂L/∂θ of the
single-process loss on the concatenated batch, so no extra factor is applied.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world_size) of the default process group, or (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Concatenate `t` (N, ...) from every rank in rank order -> (W·N, ...); gradients flow back.

    Every rank must pass the same shape (DistributedSampler pads to equal batches;
    use `drop_last=True` when the last batch could be short).
    """
    rank, size = world()
    if size == 1:
        return t
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(t.contiguous()), dim=0)
