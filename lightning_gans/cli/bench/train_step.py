"""Training-step throughput: GANModule under a bare Lightning Trainer against a hand-written loop.

Both train the default toy problem (the MLP pair of conf/model/mlp.yaml on ring8 batches of 256,
the default loss (paired RSGAN on the fused kernel), R1 with γ = 1, Adam for both players), one D
and one G step per batch. The hand-written loop is what a careful user would write in plain
PyTorch: the same nets, loss op, R1 from the same D forward, and optimizers, the batches from the
same DataLoader, no logging (GANModule logs on every `log_every_n_steps`-th batch, as in training). The two
are timed in alternating rounds in one process, so a change in the machine's load hits both; the
ratio of their median batches per second is the figure of merit (≥ 0.9 is the project's target).
A third loop, Lightning's floor, runs the hand loop's batch as the training_step of a bare
manual-optimization LightningModule (manual_backward, Lightning's optimizer wrappers and hooks, the
same Trainer): floor / hand is what Lightning itself costs, and GANModule / floor what GANModule adds.
`clock="process"` (the default) counts this process's CPU time on one thread, which other jobs on
the machine barely disturb; `clock="wall"` is wall time with torch's own thread count.
"""
from __future__ import annotations

import statistics
import time
import warnings
from contextlib import contextmanager
from functools import partial

import torch

__all__ = ["compare_train_step"]


_now = time.perf_counter


@contextmanager
def _clock(kind: str):
    """Time with CPU time of this process on one thread ("process") or wall time ("wall")."""
    global _now
    if kind not in ("process", "wall"):
        raise ValueError(f"clock must be 'process' or 'wall', got {kind!r}")
    threads, saved = torch.get_num_threads(), _now
    if kind == "process":
        torch.set_num_threads(1)
        _now = time.process_time
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        _now = saved


def _nets(seed: int):
    from ...nets import MLPDiscriminator, MLPGenerator

    torch.manual_seed(seed)
    g = MLPGenerator(latent_dim=16, out_dim=2, hidden=128, layers=6)
    d = MLPDiscriminator(in_dim=2, hidden=128, layers=3)
    return g, d


def _batches(n: int, batch: int = 256, seed: int = 0) -> list[torch.Tensor]:
    from ...data import make_toy

    ring, gen = make_toy("ring8"), torch.Generator().manual_seed(seed)
    return [ring.sample(batch, generator=gen) for _ in range(n)]


def _hand_step(g, d, loss, opt_d, opt_g, gen, real, backward=torch.Tensor.backward) -> None:
    """One batch of the hand-written loop: a D step with R1 from the same D forward, then a G step."""
    n = len(real)
    with torch.no_grad():
        fake = g(torch.randn(n, 16, generator=gen))
    real = real.detach().requires_grad_(True)  # as GANModule's R1 input; the shared batches stay untouched
    real_out, fake_out = d(real), d(fake)
    (grad,) = torch.autograd.grad(real_out.sum(), real, create_graph=True)
    d_loss = loss.d_loss(real_out, fake_out) + 0.5 * grad.square().sum(1).mean()
    opt_d.zero_grad(set_to_none=True)
    backward(d_loss)
    opt_d.step()
    for p in d.parameters():  # as toggle_optimizer does: D's parameters get no gradient in G's step
        p.requires_grad_(False)
    fake_out = d(g(torch.randn(n, 16, generator=gen)))
    with torch.no_grad():
        real_out = d(real.detach())
    g_loss = loss.g_loss(real_out, fake_out)
    opt_g.zero_grad(set_to_none=True)
    backward(g_loss)
    opt_g.step()
    for p in d.parameters():
        p.requires_grad_(True)


def _players(seed: int):
    """The nets, the loss op and Adam for D and G, as GANModule gets them here."""
    from ...losses import get

    g, d = _nets(seed)
    adam = partial(torch.optim.Adam, lr=5e-3, betas=(0.5, 0.999))
    return g, d, get({"name": "rsgan", "pairing": "paired"}), adam


def _hand_loop(batches, seed: int) -> float:
    """Batches per second of a plain PyTorch loop with the same work as GANModule's defaults here."""
    from torch.utils.data import DataLoader

    g, d, loss, adam = _players(seed)
    opt_d, opt_g = adam(d.parameters()), adam(g.parameters())
    gen = torch.Generator().manual_seed(seed)
    loader = iter(DataLoader(batches, batch_size=None))  # as GANModule gets them (Lightning adds its own layers)
    t0 = _now()
    for real in loader:
        _hand_step(g, d, loss, opt_d, opt_g, gen, real)
    return len(batches) / (_now() - t0)


def _fit_timed(model, batches) -> float:
    """Batches per second of `model` under a bare Trainer (no logger, checkpoints or progress bar)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=2 * len(batches), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)

    class Timer(pl.Callback):  # time the batches only, not Trainer set-up and tear-down
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 0:
                self.t0 = _now()

        def on_train_end(self, trainer, pl_module):
            self.t1 = _now()

    timer = Timer()
    trainer.callbacks.append(timer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice about workers and log intervals, not the subject here
        trainer.fit(model, DataLoader(batches, batch_size=None))
    # the clock starts before the first batch's step, so it holds all len(batches) steps, like the hand loop's
    return len(batches) / (timer.t1 - timer.t0)


def _gan_module(batches, seed: int) -> float:
    """Batches per second of GANModule under a bare Trainer."""
    from ...training import GANModule

    g, d, _, adam = _players(seed)
    return _fit_timed(GANModule(g, d, loss={"name": "rsgan", "pairing": "paired"}, g_optimizer=adam,
                                d_optimizer=adam, r1_gamma=1.0, ema_decay=None), batches)


def _lightning_floor(batches, seed: int) -> float:
    """Batches per second of a bare manual-optimization LightningModule whose training_step is the hand loop's
    batch, through `manual_backward` and Lightning's optimizer wrappers: Lightning's own per-batch cost, the
    floor under GANModule (which adds its logging, finiteness checks, toggling and override points)."""
    import lightning.pytorch as pl

    class Floor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.g, self.d, self.loss, self.adam = _players(seed)
            self.gen = torch.Generator().manual_seed(seed)

        def configure_optimizers(self):
            return [self.adam(self.d.parameters()), self.adam(self.g.parameters())]

        def training_step(self, real, batch_idx):
            opt_d, opt_g = self.optimizers()
            _hand_step(self.g, self.d, self.loss, opt_d, opt_g, self.gen, real, self.manual_backward)

    return _fit_timed(Floor(), batches)


def compare_train_step(batches: int = 200, rounds: int = 5, seed: int = 0, clock: str = "process") -> dict:
    """Alternate the loops `rounds` times; medians of batches per second and their ratios to the hand loop's."""
    data = _batches(batches, seed=seed)
    loops = {"hand": _hand_loop, "floor": _lightning_floor, "module": _gan_module}
    runs = {name: [] for name in loops}
    with _clock(clock):
        for fn in loops.values():  # warm-up: kernels, allocator, imports
            fn(data[:20], seed)
        for r in range(rounds):
            for name in (list(loops) if r % 2 == 0 else list(loops)[::-1]):
                runs[name].append(loops[name](data, seed))
    h, f, m = (statistics.median(runs[name]) for name in loops)
    return {"batches": batches, "rounds": rounds, "clock": clock, "hand_batches_per_s": round(h, 2),
            "module_batches_per_s": round(m, 2), "ratio": round(m / h, 3),
            "floor_batches_per_s": round(f, 2), "floor_ratio": round(f / h, 3),
            **{f"{name}_all": [round(x, 2) for x in runs[name]] for name in loops}}


def render_train_step(out: dict) -> str:
    return (f"training step, default toy problem ({out['batches']} batches x {out['rounds']} alternating rounds, "
            f"{out['clock']} clock): hand-written loop {out['hand_batches_per_s']} batches/s, GANModule "
            f"{out['module_batches_per_s']} batches/s, GANModule / hand = {out['ratio']}; Lightning's floor (a bare "
            f"LightningModule running the hand loop's batch) {out['floor_batches_per_s']} batches/s, "
            f"floor / hand = {out['floor_ratio']}")
