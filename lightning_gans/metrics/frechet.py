"""Digits metrics: the shipped digits classifier, its features, and the metrics of generated digits.

The feature network is `DigitsClassifier`, an MLP 64 -> 128 -> 64 -> 10 trained
by `train_digits_classifier` on the digits *training* split (data/images.py),
deterministically (fixed seed, one thread, full-batch Adam, fixed epochs). Its
weights ship in `lightning_gans/assets/digits_classifier.pt` (about 50 KB,
loaded with weights_only=True); when the file is missing they are retrained
(a few seconds) and cached in ~/.cache/lightning_gans/ (or $LGANS_CACHE).

`digits_metrics` scores generated digits against the training split (1,347 images; as many
samples are generated) in the 64-d penultimate features (features.DigitsFeatures):
- ``frechet_distance`` (FID), ``kid``/``kid_std``, ``precision``/``recall``,
  ``density``/``coverage``: fid.py and precision_recall.py (torchmetrics for FID and KID);
- ``classes_covered``: classes that receive at least 1 % of the generated samples among those
  the classifier labels with probability >= 0.9;
- ``class_accuracy`` (conditional GANs): share of samples classified as the label they were
  generated for.
The real-vs-real floor of frechet_distance (test split against training split) is 1.58.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

__all__ = ["DigitsClassifier", "train_digits_classifier", "load_digits_classifier", "digits_metrics",
           "class_accuracy", "digits_reference", "n_reference", "ASSET_PATH"]

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


_REFERENCE: dict = {}


def digits_reference(**kw):
    """`ImageMetrics` against the digits training split in the classifier's features (built once per options)."""
    key = tuple(sorted(kw.items()))
    if key not in _REFERENCE:
        from ..data.images import digits_split
        from .features import DigitsFeatures
        from .fid import ImageMetrics

        _REFERENCE[key] = ImageMetrics(DigitsFeatures(), digits_split()[0], **kw)
    return _REFERENCE[key]


def n_reference() -> int:
    """Images in the reference set (the training split, 1,347): as many samples are generated."""
    from ..data.images import digits_split

    return len(digits_split()[0])


@torch.no_grad()
def class_accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of generated digits that the classifier assigns to the label they were generated for."""
    labels = torch.as_tensor(labels).reshape(-1).long().cpu()
    if len(labels) != len(images):
        raise ValueError(f"class_accuracy needs one label per image: {len(labels)} labels, {len(images)} images")
    predicted = load_digits_classifier()(images.detach().float().cpu().clamp(-1, 1)).argmax(1)
    return float((predicted == labels).double().mean())


@torch.no_grad()
def digits_metrics(images: torch.Tensor, labels: Optional[torch.Tensor] = None, **options) -> dict[str, float]:
    """Metrics of generated digits (n, 1, 8, 8) in [-1, 1] against the training split (fid.py), plus
    classes_covered, and class_accuracy when the `labels` they were generated for are given.

    `options`: ImageMetrics' kid_subsets, kid_subset_size, k_pr, k_dc, seed.
    """
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, 8):
        raise ValueError(f"digits metrics need images of shape (n, 1, 8, 8), got {tuple(images.shape)}")
    model = load_digits_classifier()
    x = images.detach().float().cpu().clamp(-1, 1)
    conf, label = model(x).softmax(1).max(1)
    counts = torch.bincount(label[conf >= CONFIDENCE], minlength=10)
    out = dict(digits_reference(**options)(x))
    out["classes_covered"] = int((counts >= MIN_SHARE * len(x)).sum())
    if labels is not None:
        out["class_accuracy"] = class_accuracy(x, labels)
    return out


if __name__ == "__main__":  # python -m lightning_gans.metrics.frechet: retrain and rewrite the shipped weights
    trained, accuracy = train_digits_classifier()
    torch.save({"state_dict": trained.state_dict(), "test_accuracy": accuracy}, ASSET_PATH)
    print(f"wrote {ASSET_PATH} (test accuracy {accuracy:.4f})")
