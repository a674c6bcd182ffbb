"""When a callback acts: on crossing each multiple of `every_n_steps` optimizer steps.

`trainer.global_step` counts optimizer steps, so one batch can advance it by 2 (a D step and a
G step) and a test for `step % n == 0` would miss multiples; counting crossings never does.
"""
from __future__ import annotations

__all__ = ["Every", "logger_step"]


def logger_step(trainer, pl_module) -> int:
    """The x-axis value of this batch in the loggers: the one Lightning itself gives `self.log`, the 0-based
    index of the batch (GANModule's `d_iters` counts batches, so it is d_iters - 1), so that metrics,
    pictures and training losses share one x-axis. Outside GANModule: the optimizer steps."""
    batches = getattr(pl_module, "d_iters", None)
    return max(int(batches) - 1, 0) if batches is not None else int(trainer.global_step)


class Every:
    """`due(step)` is True once each time `step` reaches a new multiple of n (never when n = 0)."""

    def __init__(self, n: int, what: str = "every_n_steps") -> None:
        if n < 0:
            raise ValueError(f"{what} must be >= 0, got {n}")
        self.n, self._bucket = n, 0

    def restart(self, step: int) -> None:
        """Continue from `step` (e.g. a resumed run) without firing for the multiples already passed."""
        self._bucket = step // self.n if self.n else 0

    def due(self, step: int) -> bool:
        if not self.n or step // self.n <= self._bucket:
            return False
        self._bucket = step // self.n
        return True
