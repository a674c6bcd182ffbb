"""Digits metrics: Fréchet distance in a small classifier's feature space, and classes covered.

The feature network is `DigitsClassifier`, an MLP 64 -> 128 -> 64 -> 10 trained
by `train_digits_classifier` on the digits *training* split (data/images.py),
deterministically (fixed seed, one thread, full-batch Adam, fixed epochs). Its
weights ship in `lightning_gans/assets/digits_classifier.pt` (about 50 KB,
loaded with weights_only=True); when the file is missing they are retrained
(a few seconds) and cached in ~/.cache/lightning_gans/ (or $LGANS_CACHE).

- ``frechet_distance``: ‖μ₁-μ₂‖² + tr(Σ₁ + Σ₂ - 2(Σ₁^½ Σ₂ Σ₁^½)^½) between the
  64-d penultimate features (after ReLU) of generated images and of the
  training split (1,347 images; as many generated samples are drawn). The
  matrix square root is taken through symmetric eigendecompositions in
  float64, with eigenvalues clipped at 0, which is stable for singular Σ.
- ``classes_covered``: classes that receive at least 1 % of the generated
  samples among those the classifier labels with probability >= 0.9.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["DigitsClassifier", "train_digits_classifier", "load_digits_classifier", "frechet_distance",
           "digits_metrics", "ASSET_PATH"]

ASSET_PATH = Path(__file__).resolve().parent.parent / "assets" / "digits_classifier.pt"
CONFIDENCE, MIN_SHARE = 0.9, 0.01


class DigitsClassifier(nn.Module):
    """(B, 1, 8, 8) in [-1, 1] -> logits (B, 10); `features` gives the (B, 64) penultimate layer."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (B, 10)


def train_digits_classifier(epochs: int = 300, seed: int = 0) -> tuple[DigitsClassifier, float]:
    """Train on the digits training split; return (model, test accuracy). Deterministic on CPU."""
    from ..data.images import digits_split

    x_tr, y_tr, x_te, y_te = digits_split()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a fixed reduction order
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DigitsClassifier()
            opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
            for _ in range(epochs):
                loss = nn.functional.cross_entropy(model(x_tr), y_tr)
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        acc = float((model(x_te).argmax(1) == y_te).float().mean())
    return model, acc


def _cache_path() -> Path:
    root = os.environ.get("LGANS_CACHE") or Path.home() / ".cache" / "lightning_gans"
    return Path(root) / "digits_classifier.pt"


_MODEL: DigitsClassifier | None = None


def load_digits_classifier() -> DigitsClassifier:
    """The shipped classifier, else the cached one, else train and cache it."""
    global _MODEL
    if _MODEL is not None:
        return _MODEL
    model = DigitsClassifier()
    for path in (ASSET_PATH, _cache_path()):
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["state_dict"])
            break
    else:
        model, acc = train_digits_classifier()
        path = _cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": model.state_dict(), "test_accuracy": acc}, path)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _MODEL = model
    return model


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets (n1, d) and (n2, d)."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be (n1, d) and (n2, d), got {f1.shape} and {f2.shape}")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(s1)
    sqrt_s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = sqrt_s1 @ s2 @ sqrt_s1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    # Clipped at 0: identical sets can give -1e-6 from rounding.
    return max(0.0, float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt))


_REAL_FEATURES: np.ndarray | None = None


@torch.no_grad()
def real_features() -> np.ndarray:
    """Features of the digits training split, (1347, 64)."""
    global _REAL_FEATURES
    if _REAL_FEATURES is None:
        from ..data.images import digits_split

        _REAL_FEATURES = load_digits_classifier().features(digits_split()[0]).numpy()
    return _REAL_FEATURES


def n_reference() -> int:
    return len(real_features())


@torch.no_grad()
def digits_metrics(images: torch.Tensor) -> dict[str, float]:
    """Metrics of generated digits (n, 1, 8, 8) in [-1, 1] against the training split."""
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, 8):
        raise ValueError(f"digits metrics need images of shape (n, 1, 8, 8), got {tuple(images.shape)}")
    model = load_digits_classifier()
    x = images.detach().float().cpu().clamp(-1, 1)
    feats = model.features(x)
    probs = model.head(feats).softmax(1)
    conf, label = probs.max(1)
    counts = torch.bincount(label[conf >= CONFIDENCE], minlength=10)
    return {
        "frechet_distance": frechet_distance(feats.numpy(), real_features()),
        "classes_covered": int((counts >= MIN_SHARE * len(x)).sum()),
    }


if __name__ == "__main__":  # python -m lightning_gans.metrics.frechet: retrain and rewrite the shipped weights
    trained, accuracy = train_digits_classifier()
    torch.save({"state_dict": trained.state_dict(), "test_accuracy": accuracy}, ASSET_PATH)
    print(f"wrote {ASSET_PATH} (test accuracy {accuracy:.4f})")
