"""toy_metrics (docs/theory.md §4) on hand-built distributions where every number is exact, written
against the hand mutants of docs/testing.md (mutmut 3 does not mutate the decorated toy_metrics)."""
import math

import pytest
import torch

from lightning_gans.data.toys import ToyDistribution
from lightning_gans.metrics import toy_metrics

# Two modes at (0, 0) and (4, 0), σ = 0.5: with n_sigma = 2 the high-quality radius is exactly 1.0.
TWO = ToyDistribution("two", torch.tensor([[0.0, 0.0], [4.0, 0.0]], dtype=torch.float64), 0.5,
                      torch.tensor([0, 1]), 2)


def test_the_radius_is_inclusive():
    # "within nσ": a sample exactly nσ = 1.0 from its centre is high quality.
    m = toy_metrics(torch.tensor([[1.0, 0.0], [4.0, 1.0]]), TWO, n_sigma=2.0)
    assert m == {"modes_covered": 2, "high_quality_fraction": 1.0, "reverse_kl": 0.0, "halo_fraction": 0.0,
                 "bridge_fraction": 0.0}


def test_non_finite_samples_count_as_low_quality():
    # 4 samples, one NaN and one inf: neither is high quality, and both stay in the denominator.
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [float("nan"), 0.0], [float("inf"), 1.0]])
    m = toy_metrics(x, TWO)
    assert m["high_quality_fraction"] == 0.5 and m["modes_covered"] == 1
    assert m["reverse_kl"] == pytest.approx(math.log(2))  # all mass on one of 2 modes: KL = log 2


def test_reverse_kl_of_an_uneven_split():
    # 3 samples on mode 0, 1 on mode 1: q = (3/4, 1/4), KL(q‖u) = Σ q log(2q).
    x = torch.tensor([[0.0, 0.0]] * 3 + [[4.0, 0.0]])
    want = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert toy_metrics(x, TWO)["reverse_kl"] == pytest.approx(want, abs=1e-12)


def test_default_radius_is_three_sigma():
    # 1.4 from the centre: inside 3σ = 1.5, outside 2σ = 1.0.
    assert toy_metrics(torch.tensor([[1.4, 0.0]]), TWO)["high_quality_fraction"] == 1.0


def test_halo_and_bridge_split_the_rest():
    # σ = 0.5, n_sigma = 3 (radius 1.5), halo up to 6σ = 3.0 (inclusive); beyond, or non-finite: a bridge.
    x = torch.tensor([[0.0, 0.0], [1.5, 0.0], [0.0, 1.6], [4.0, 3.0], [2.0, 2.5], [float("nan"), 0.0],
                      [4.0, -3.01], [-3.5, 0.0]])
    m = toy_metrics(x, TWO)
    assert m["high_quality_fraction"] == 2 / 8
    assert m["halo_fraction"] == 2 / 8    # 1.6 and exactly 3.0 from a centre
    assert m["bridge_fraction"] == 4 / 8  # 3.2 (between the modes), 3.01, 3.5, and the NaN
    assert toy_metrics(x, TWO, halo_sigma=8.0)["bridge_fraction"] == 1 / 8  # only the NaN is beyond 4.0
