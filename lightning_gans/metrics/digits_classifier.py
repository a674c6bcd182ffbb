"""The shipped digits classifier: the feature network of every digits metric.

`DigitsClassifier` is an MLP 64 -> 128 -> 64 -> 10 trained by `train_digits_classifier` on the digits
*training* split (data/images.py), deterministically (fixed seed, one thread, full-batch Adam, fixed
epochs). Its weights ship in `lightning_gans/assets/digits_classifier.pt` (about 50 KB, loaded with
weights_only=True); when the file is missing they are retrained (a few seconds) and cached in
~/.cache/lightning_gans/ (or $LGANS_CACHE). `python -m lightning_gans.metrics.digits_classifier`
retrains them and rewrites the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["DigitsClassifier", "train_digits_classifier", "load_digits_classifier", "ASSET_PATH"]

ASSET_PATH = Path(__file__).resolve().parent.parent / "assets" / "digits_classifier.pt"


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


if __name__ == "__main__":  # retrain and rewrite the shipped weights
    trained, accuracy = train_digits_classifier()
    torch.save({"state_dict": trained.state_dict(), "test_accuracy": accuracy}, ASSET_PATH)
    print(f"wrote {ASSET_PATH} (test accuracy {accuracy:.4f})")
