"""SampleGrid: fixed latent grid every k steps, image grids and 2-D density scatters, PNG files and logger images."""
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.metrics import SampleGrid
from lightning_gans.metrics.plots import density_scatter, image_grid
from lightning_gans.training import GANModule

LATENT = 4


def fit(model, data, callbacks=(), logger=False, max_steps=8, root=None):
    t = pl.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, logger=logger, callbacks=list(callbacks),
                   enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                   default_root_dir=root)
    t.fit(model, DataLoader(TensorDataset(data), batch_size=8))
    return t


def toy_module(seed=0):
    torch.manual_seed(seed)
    g = nn.Sequential(nn.Linear(LATENT, 16), nn.ReLU(), nn.Linear(16, 2))
    d = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    return GANModule(g, d, loss="nsgan", latent_dim=LATENT)


class Losses(pl.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append({k: float(v) for k, v in outputs.items()})


def test_scatter_every_k_steps_png_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 0.5 + 2.0
    grid = SampleGrid(every_n_steps=3, n_samples=200, n_real=40, output_dir=str(tmp_path / "out"))
    logger = TensorBoardLogger(tmp_path, name="tb")
    fit(toy_module(), data, [grid], logger=logger, max_steps=10)
    # global_step after each batch: 2, 4, 6, 8, 10 -> crossings of 3, 6, 9 at steps 4, 6, 10; the end is step 10
    assert [p.rsplit("step", 1)[1] for p in grid.written] == ["0000004.png", "0000006.png", "0000010.png"]
    picture = np.asarray(Image.open(grid.written[-1]))
    assert picture.shape == (400, 400, 3) and picture.std() > 0
    assert sum(len(r) for r in grid._real) == 40  # the density background came from the first real batches
    acc = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    acc.Reload()
    # the loggers' x-axis is the batch index (Lightning's own): global_step 4, 6, 10 = batches 1, 2, 4
    assert [e.step for e in acc.Images("samples")] == [1, 2, 4]


def test_the_grid_is_fixed_and_does_not_change_training(tmp_path):
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    plain, with_grid = Losses(), Losses()
    m1 = toy_module()
    fit(m1, data, [plain])
    grid = SampleGrid(every_n_steps=2, n_samples=16, output_dir=str(tmp_path))
    m2 = toy_module()
    fit(m2, data, [with_grid, grid])
    assert plain.rows == with_grid.rows  # sampling for pictures never draws from the training streams
    z_draws = [m2.sample(n=16, seed=1234), m2.sample(n=16, seed=1234)]
    torch.testing.assert_close(*z_draws)  # the same codes each time: a fixed grid
    assert not torch.equal(z_draws[0], m2.sample(n=16, seed=7))


def test_image_grid_layout_and_values():
    x = torch.full((5, 1, 3, 4), -1.0)  # black tiles
    x[4] = 1.0  # the last one white
    g = image_grid(x, nrow=2, pad=1)
    assert g.shape == (1 + 3 * (3 + 1), 1 + 2 * (4 + 1), 3) and g.dtype == np.uint8
    assert (g[1:4, 1:5] == 0).all()  # tile 0 at row 0, col 0
    assert (g[9:12, 1:5] == 255).all()  # tile 4 at row 2, col 0
    assert (g[0] == 255).all()  # padding is white
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        image_grid(torch.zeros(2, 2, 3, 3))


def test_image_data_gives_an_image_grid(tmp_path):
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(LATENT, 36), nn.Tanh(), nn.Unflatten(1, (1, 6, 6)))
    d = nn.Sequential(nn.Flatten(), nn.Linear(36, 1))
    m = GANModule(g, d, loss="hinge", latent_dim=LATENT, ema_decay=0.9)
    grid = SampleGrid(every_n_steps=4, n_samples=9, output_dir=str(tmp_path))
    fit(m, torch.rand(32, 1, 6, 6) * 2 - 1, [grid], max_steps=4)
    assert len(grid.written) == 1
    picture = np.asarray(Image.open(grid.written[0]))
    assert picture.shape == (2 + 3 * 8, 2 + 3 * 8, 3)
    np.testing.assert_array_equal(picture, image_grid(m.sample(n=9, seed=1234)))  # the EMA generator's samples


def test_density_scatter_draws_points_over_the_density():
    real = torch.randn(500, 2)
    with_real = density_scatter(torch.randn(50, 2) + 1, real)
    without = density_scatter(torch.randn(50, 2) + 1, None)
    assert with_real.shape == without.shape and not np.array_equal(with_real, without)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="every_n_steps"):
        SampleGrid(every_n_steps=0)
    with pytest.raises(ValueError, match="n_samples"):
        SampleGrid(n_samples=0)
