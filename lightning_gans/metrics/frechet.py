"""Digits metrics: the metrics of generated digits in the shipped classifier's features.

The feature network is `digits_classifier.DigitsClassifier` (its weights ship with the package).

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

from typing import Optional

import torch

from ..data.images import digits_split
from .digits_classifier import ASSET_PATH, DigitsClassifier, load_digits_classifier, train_digits_classifier
from .features import DigitsFeatures
from .fid import ImageMetrics

__all__ = ["DigitsClassifier", "train_digits_classifier", "load_digits_classifier", "digits_metrics",
           "class_accuracy", "digits_reference", "n_reference", "ASSET_PATH"]

CONFIDENCE, MIN_SHARE = 0.9, 0.01


_REFERENCE: dict = {}


def digits_reference(**kw):
    """`ImageMetrics` against the digits training split in the classifier's features (built once per options)."""
    key = tuple(sorted(kw.items()))
    if key not in _REFERENCE:
        _REFERENCE[key] = ImageMetrics(DigitsFeatures(), digits_split()[0], **kw)
    return _REFERENCE[key]


def n_reference() -> int:
    """Images in the reference set (the training split, 1,347): as many samples are generated."""
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
