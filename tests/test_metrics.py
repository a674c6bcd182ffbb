"""Toy mode metrics (docs/theory.md §4), Fréchet distance, the digits classifier, and the plots."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_gans.data import digits_split, make_toy
from lightning_gans.metrics import digits_metrics, frechet_distance, load_digits_classifier, toy_metrics
from lightning_gans.metrics import plots
from lightning_gans.metrics.frechet import ASSET_PATH, train_digits_classifier


def test_real_ring_samples_score_as_a_perfect_generator():
    ring = make_toy("ring8")
    m = toy_metrics(ring.sample(2500, torch.Generator().manual_seed(0)), ring)
    assert m["modes_covered"] == 8
    # a disc of radius 3σ holds 1 - exp(-9/2) = 98.9 % of a 2-D Gaussian: the best any generator scores
    assert m["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    assert 0 <= m["reverse_kl"] < 0.01


def test_collapse_and_misses_are_counted():
    grid = make_toy("grid25")
    one_mode = torch.tensor([[2.0, 2.0]]).repeat(100, 1)
    m = toy_metrics(one_mode, grid)
    assert m == {"modes_covered": 1, "high_quality_fraction": 1.0, "reverse_kl": pytest.approx(math.log(25)),
                 "halo_fraction": 0.0, "bridge_fraction": 0.0}
    # half the samples on two modes, half in between (low quality): only the high-quality ones count
    x = torch.tensor([[0.0, 0.0]] * 30 + [[2.0, 0.0]] * 10 + [[1.0, 1.0]] * 40)
    m = toy_metrics(x, grid)
    assert m["modes_covered"] == 2 and m["high_quality_fraction"] == 0.5
    assert m["bridge_fraction"] == 0.5 and m["halo_fraction"] == 0.0  # (1, 1) is √2 = 28σ from every centre
    q = np.array([0.75, 0.25])
    assert m["reverse_kl"] == pytest.approx(float((q * np.log(25 * q)).sum()))
    # 3σ boundary of ring8 (σ = 0.02): 0.059 away is in, 0.061 is out
    ring = make_toy("ring8")
    m = toy_metrics(torch.tensor([[2.059, 0.0], [0.0, 2.061]]), ring)
    assert m["modes_covered"] == 1 and m["high_quality_fraction"] == 0.5
    nothing = toy_metrics(torch.full((10, 2), 50.0), ring)
    assert nothing["modes_covered"] == 0 and nothing["reverse_kl"] == pytest.approx(math.log(8))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        toy_metrics(torch.zeros(5, 3), ring)


def test_spiral_segments_are_its_modes():
    spiral = make_toy("spiral")
    m = toy_metrics(spiral.sample(5000, torch.Generator().manual_seed(1)), spiral)
    assert m["modes_covered"] == spiral.n_modes == 20 and m["high_quality_fraction"] > 0.97


def test_frechet_distance_matches_the_gaussian_formula():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # N(0, I) vs N(m, 4I): |m|² + tr(I + 4I - 2·2I) = |m|² + 3
    b = 2 * rng.standard_normal((20000, 3)) + np.array([1.0, 2.0, 0.0])
    assert frechet_distance(a, b) == pytest.approx(5.0 + 3.0, rel=0.03)
    with pytest.raises(ValueError, match="features must be"):
        frechet_distance(a, b[:, :2])


def test_shipped_classifier_is_accurate_and_training_is_deterministic():
    assert ASSET_PATH.is_file() and ASSET_PATH.stat().st_size < 200_000
    model = load_digits_classifier()
    _, _, x_te, y_te = digits_split()
    with torch.no_grad():
        assert float((model(x_te).argmax(1) == y_te).float().mean()) > 0.95
    a, acc_a = train_digits_classifier(epochs=15)
    b, acc_b = train_digits_classifier(epochs=15)
    assert acc_a == acc_b and all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_digits_metrics_separate_real_digits_from_noise():
    _, _, x_te, _ = digits_split()
    real = digits_metrics(x_te)
    noise = digits_metrics(torch.rand(450, 1, 8, 8) * 2 - 1)
    assert real["classes_covered"] == 10
    assert real["frechet_distance"] < 0.1 * noise["frechet_distance"]
    zeros = digits_metrics(x_te[digits_split()[3] == 0])
    assert zeros["classes_covered"] == 1
    with pytest.raises(ValueError, match=r"\(n, 1, 8, 8\)"):
        digits_metrics(torch.zeros(4, 1, 28, 28))


def test_plots_write_png_gif_and_grid(tmp_path):
    ring = make_toy("ring8")
    real = ring.sample(300)
    frames = [plots.density_scatter(ring.sample(200) * (s / 4), real, title=f"step {s}", limits=((-3, -3), (3, 3)))
              for s in (1, 2, 3, 4)]
    assert len({f.shape for f in frames}) == 1  # fixed limits and size: frames of one size
    plots.save_png(frames[-1], tmp_path / "s.png")
    plots.save_gif(frames, tmp_path / "s.gif")
    with Image.open(tmp_path / "s.gif") as gif:
        assert gif.n_frames == 4
    assert Image.open(tmp_path / "s.png").size[0] > 100
    grid = plots.image_grid(torch.rand(10, 1, 8, 8) * 2 - 1, nrow=5, pad=1)
    assert grid.shape == (1 + 2 * 9, 1 + 5 * 9, 3)
    plots.save_png(grid, tmp_path / "g.png", scale=2)
    assert Image.open(tmp_path / "g.png").size == (2 * (5 * 9 + 1), 2 * (2 * 9 + 1))
