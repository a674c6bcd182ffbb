"""DDP on CPU: 2 processes (gloo) launched with torch.distributed.run; this file is also the worker script.

With `gather_logits=True` an all-pairs relativistic loss pairs across both ranks' batches, so the losses and
the weights after training equal those of one process on the global batch; without it they differ.
"""
import argparse
import functools
import os
import socket
import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.training import GANModule

LATENT, PER_RANK, WORLD, STEPS = 3, 4, 2, 6  # 3 batches of 2 x 4 points: 3 D steps + 3 G steps


def make_module(gather: bool) -> GANModule:
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(LATENT, 12), nn.ReLU(), nn.Linear(12, 2))
    # no last bias: relativistic losses cancel it, so its gradient is rounding noise that Adam would amplify to
    # lr-sized steps differing between the two runs
    d = nn.Sequential(nn.Linear(2, 12), nn.Tanh(), nn.Linear(12, 1, bias=False))
    adam = functools.partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.9))
    return GANModule(g, d, loss={"name": "rsgan", "pairing": "all"}, latent_dim=LATENT, r1_gamma=1.0,
                     ema_decay=0.5, g_optimizer=adam, d_optimizer=adam, gather_logits=gather)


def data() -> torch.Tensor:
    return torch.randn(WORLD * PER_RANK * 3, 2, generator=torch.Generator().manual_seed(0)) + 1.0


class Record(pl.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append({k: float(v) for k, v in outputs.items() if k in ("d_loss", "g_loss", "r1")})


def fit(module: GANModule, batch_size: int, sampler=None, **trainer_kw) -> list:
    pl.seed_everything(3, verbose=False)
    rec = Record()
    t = pl.Trainer(accelerator="cpu", max_steps=STEPS, logger=False, enable_progress_bar=False,
                   enable_checkpointing=False, enable_model_summary=False, callbacks=[rec],
                   use_distributed_sampler=False, **trainer_kw)
    t.fit(module, DataLoader(TensorDataset(data()), batch_size=batch_size, shuffle=False, sampler=sampler))
    return rec.rows


def worker(out: str) -> None:
    from lightning.pytorch.strategies import DDPStrategy
    from torch.utils.data import DistributedSampler

    result = {}
    for gather in (True, False):
        m = make_module(gather)
        # unshuffled: rank r gets points r, r + 2, ..., so each global batch holds the single-process batch's
        # points, reordered, which an all-pairs mean does not see (Lightning's own sampler would shuffle)
        sampler = DistributedSampler(TensorDataset(data()), WORLD, int(os.environ["RANK"]), shuffle=False)
        rows = fit(m, PER_RANK, sampler, devices=WORLD, strategy=DDPStrategy(process_group_backend="gloo", find_unused_parameters=True))
        result[f"gather={gather}"] = {"rows": rows, "state": {k: v.clone() for k, v in m.state_dict().items()}}
    rank = int(os.environ["RANK"])
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes_gather_equals_the_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", __file__, "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    single = make_module(gather=False)
    single_rows = fit(single, WORLD * PER_RANK, devices=1)
    assert len(single_rows) == 3 and {"d_loss", "g_loss", "r1"} <= set(single_rows[0])

    gathered = ranks[0]["gather=True"]
    for got, want in zip(gathered["rows"], single_rows, strict=True):
        # every logged loss is the single-process loss on the global batch (r1 is rank-local, so not compared)
        assert got["d_loss"] == pytest.approx(want["d_loss"], rel=1e-5, abs=1e-6)
        assert got["g_loss"] == pytest.approx(want["g_loss"], rel=1e-5, abs=1e-6)
    for k, v in single.state_dict().items():  # G, D and EMA weights after 3 D and 3 G steps
        torch.testing.assert_close(gathered["state"][k], v, rtol=1e-4, atol=1e-5, msg=k)
        torch.testing.assert_close(ranks[1]["gather=True"]["state"][k], gathered["state"][k], rtol=0, atol=0)

    local = ranks[0]["gather=False"]  # rank-local all pairs: a different (higher-variance) estimate
    assert abs(local["rows"][0]["d_loss"] - single_rows[0]["d_loss"]) > 1e-4


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    worker(parser.parse_args().out)
