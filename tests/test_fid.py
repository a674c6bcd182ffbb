"""Image metrics: torchmetrics' FID/KID with our feature modules, precision/recall, density/coverage,
class accuracy, and the Inception feature extractor's errors."""
import numpy as np
import pytest
import torch

from lightning_gans.data import digits_split
from lightning_gans.metrics import (ImageMetrics, MetricsCallback, class_accuracy, density_coverage, digits_metrics,
                                    frechet_distance, load_digits_classifier, precision_recall)
from lightning_gans.metrics.features import IdentityFeatures, InceptionFeatures
from lightning_gans.metrics.precision_recall import knn_radii


def closed_form_frechet(f1, f2):
    """The reference: ‖μ₁-μ₂‖² + tr(Σ₁ + Σ₂ - 2(Σ₁^½ Σ₂ Σ₁^½)^½), symmetric eigendecompositions in float64."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
    return float(((f1.mean(0) - f2.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)


def test_fid_of_a_set_with_itself_is_zero():
    x = digits_split()[0]
    assert frechet_distance(np.random.default_rng(0).standard_normal((500, 8)),
                            np.random.default_rng(0).standard_normal((500, 8))) == pytest.approx(0, abs=1e-9)
    m = digits_metrics(x, kid_subsets=5)
    assert m["frechet_distance"] == pytest.approx(0, abs=1e-6)
    assert m["precision"] == m["recall"] == m["coverage"] == 1.0


def test_two_gaussians_analytic_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    b = 2 * rng.standard_normal((20000, 3)) + np.array([1.0, 2.0, 0.0])
    # N(0, I) vs N(m, 4I): |m|² + tr(I + 4I - 2·2I) = 5 + 3
    assert frechet_distance(a, b) == pytest.approx(8.0, rel=0.03)
    c = rng.standard_normal((20000, 2)) @ np.diag([1.0, 3.0])  # Σ = diag(1, 9) vs I: (1-1)² + (3-1)² = 4
    assert frechet_distance(rng.standard_normal((20000, 2)), c) == pytest.approx(4.0, rel=0.03)
    with pytest.raises(ValueError, match="features must be"):
        frechet_distance(a, b[:, :2])


def test_torchmetrics_fid_agrees_with_the_closed_form_on_digits_features():
    x_tr, _, x_te, _ = digits_split()
    model = load_digits_classifier()
    with torch.no_grad():
        f_tr, f_te = model.features(x_tr).numpy(), model.features(x_te).numpy()
        f_noise = model.features(torch.rand(600, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1).numpy()
    for a, b in ((f_te, f_tr), (f_noise, f_tr), (f_tr[:600], f_tr[600:])):
        assert frechet_distance(a, b) == pytest.approx(closed_form_frechet(a, b), rel=1e-6)
    # through the image pipeline (the digits feature module inside torchmetrics): the test-vs-train floor
    fid = digits_metrics(x_te, kid_subsets=5)["frechet_distance"]
    assert fid == pytest.approx(closed_form_frechet(f_te, f_tr), rel=1e-6)
    assert closed_form_frechet(f_te, f_tr) == pytest.approx(1.58, abs=0.01)


def test_precision_recall_density_coverage():
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.standard_normal((400, 5)))
    assert precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}
    assert density_coverage(real, real)["coverage"] == 1.0
    far = real + 100
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, far) == {"density": 0.0, "coverage": 0.0}
    # fakes collapsed onto one real point: precise, but they recall and cover almost nothing
    collapsed = real[:1].repeat(400, 1)
    pr, dc = precision_recall(real, collapsed), density_coverage(real, collapsed)
    assert pr["precision"] == 1.0 and pr["recall"] < 0.05 and dc["coverage"] < 0.05
    # density counts the real balls holding each fake: on a line of equally spaced points with k = 2, an
    # interior point lies in its own ball and in its two neighbours' (radius 2 reaches them), 3 balls
    line = torch.arange(50.0).unsqueeze(1)
    assert density_coverage(line, line[10:11], k=2)["density"] == pytest.approx(3 / 2)
    # a ball's radius is the distance to the k-th nearest *other* point: 1, 1, 2 for k = 1, 2, 3 on the line
    assert [float(knn_radii(line.double(), k)[10]) for k in (1, 2, 3)] == [1.0, 1.0, 2.0]


def test_kid_and_the_other_metrics_separate_noise_from_digits():
    x_tr, _, x_te, _ = digits_split()
    real = digits_metrics(x_te, kid_subsets=5)
    noise = digits_metrics(torch.rand(450, 1, 8, 8) * 2 - 1, kid_subsets=5)
    assert abs(real["kid"]) < 0.01 * noise["kid"] and noise["kid"] > 0
    assert real["precision"] > 0.8 and real["recall"] > 0.8 and noise["precision"] == noise["coverage"] == 0.0
    a = ImageMetrics(IdentityFeatures(64), load_digits_classifier().features(x_tr).double(), kid_subsets=5)
    assert a(load_digits_classifier().features(x_te).double()) == a(load_digits_classifier().features(x_te).double())


def test_class_accuracy_of_real_digits_and_of_wrong_labels():
    _, _, x_te, y_te = digits_split()
    assert class_accuracy(x_te, y_te) > 0.95
    assert class_accuracy(x_te, (y_te + 1) % 10) < 0.05
    assert digits_metrics(x_te, y_te, kid_subsets=5)["class_accuracy"] == class_accuracy(x_te, y_te)


def test_inception_weights_errors_are_one_line(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=r"metrics.inception_weights: no file at .*nope.pth; expected "
                                                r"Inception-v3 weights .*nothing is downloaded"):
        InceptionFeatures(missing)
    with pytest.raises(FileNotFoundError, match="metrics.inception_weights: no file"):
        MetricsCallback(evaluator="image", inception_weights=str(missing))
    with pytest.raises(ValueError, match="callbacks.metrics.inception_weights: Inception-v3 features need"):
        MetricsCallback(features="inception")
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(10, 4)}, other)
    with pytest.raises(ValueError, match="not an Inception-v3 state dict"):
        InceptionFeatures(other)
    torchvision_like = tmp_path / "tv.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048)}, torchvision_like)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ModuleNotFoundError, match="needs torchvision: pip install"):
            InceptionFeatures(torchvision_like)
    with pytest.raises(ValueError, match="callbacks.metrics.kid_subsets must be an integer >= 1, got 0"):
        MetricsCallback(kid_subsets=0)


def test_the_callback_scores_images_in_another_feature_space():
    """The evaluator=image path (Inception's place taken by a small fixed net): the same metrics, reference
    from the data module, class_accuracy still from the digits classifier for conditional digits."""
    from types import SimpleNamespace

    from torch import nn

    from lightning_gans.data import DigitsDataModule
    from lightning_gans.nets import DCGANDiscriminator, DCGANGenerator
    from lightning_gans.training import GANModule

    class Features(nn.Module):
        num_features = 16

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))

        @torch.no_grad()
        def forward(self, x):
            return self.net(x.float()).double()

    gan = GANModule(DCGANGenerator(8, 1, 8, 4, num_classes=10), DCGANDiscriminator(1, 8, 4, num_classes=10),
                    num_classes=10)
    for kind, dm in (("image", DigitsDataModule(evaluator="none")), ("digits", DigitsDataModule())):
        cb = MetricsCallback(n_samples=200, kid_subsets=3)
        cb.inception = Features()  # what inception_weights=... would have loaded
        cb.evaluator = kind if kind == "image" else None
        trainer = SimpleNamespace(datamodule=dm, global_step=0, loggers=[])
        m = cb.evaluate(trainer, gan)
        assert {"frechet_distance", "kid", "precision", "recall", "density", "coverage"} <= set(m)
        assert m["frechet_distance"] > 0 and ("class_accuracy" in m) == (kind == "digits")
        assert cb._image_metrics.real_features.shape == (200, 16)
