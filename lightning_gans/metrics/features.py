"""Feature extractors for FID, KID, precision/recall and density/coverage (fid.py, precision_recall.py).

Each maps images (N, C, H, W) in [-1, 1] to float64 features (N, F) and states `num_features`
(torchmetrics reads it instead of probing the module with a dummy 299×299 image).

- `DigitsFeatures`: the 64-d penultimate layer of the shipped digits classifier (digits_classifier.py); the
  default for the 8×8 digits, where Inception features of upsampled 8×8 images would mean little.
- `InceptionFeatures(weights)`: Inception-v3's 2048-d pool features from a local weights file, in
  torch-fidelity's format (pt_inception-2015-12-05-*.pth, the network of the original TF FID code)
  or torchvision's (inception_v3_google-*.pth). Nothing is downloaded. The architecture comes from
  torch-fidelity (through torchmetrics) or torchvision, which are optional: the error says which to
  install.
- `FeatureCache(extractor)`: computes each image batch's features once, however many metrics
  (FID, KID, precision/recall) are handed the same batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .digits_classifier import load_digits_classifier

__all__ = ["DigitsFeatures", "InceptionFeatures", "IdentityFeatures", "FeatureCache", "feature_extractor"]


class DigitsFeatures(nn.Module):
    """(N, 1, 8, 8) in [-1, 1] -> (N, 64) float64: the digits classifier's penultimate features."""

    num_features = 64

    def __init__(self):
        super().__init__()
        self.classifier = load_digits_classifier()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(f"digits features need images of shape (n, 1, 8, 8), got {tuple(x.shape)}")
        return self.classifier.features(x.detach().float().cpu().clamp(-1, 1)).double()


class IdentityFeatures(nn.Module):
    """Features given directly, (N, F) -> (N, F) float64: FID/KID of feature sets computed elsewhere."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f.double()


class InceptionFeatures(nn.Module):
    """(N, C, H, W) in [-1, 1] (C = 1 or 3, any size) -> (N, 2048) float64 Inception-v3 pool features."""

    num_features = 2048
    _MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's ImageNet normalisation

    def __init__(self, weights: str):
        super().__init__()
        path = Path(str(weights)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"metrics.inception_weights: no file at {weights}; expected Inception-v3 weights in torch-fidelity's "
                "(pt_inception-2015-12-05-*.pth) or torchvision's (inception_v3_google-*.pth) format; "
                "nothing is downloaded")
        state = torch.load(path, map_location="cpu", weights_only=True)
        fc = state.get("fc.weight") if isinstance(state, dict) else None
        classes = None if fc is None else fc.shape[0]
        if classes == 1008:  # the 2015 TF graph's 1008-way head: torch-fidelity's port of the FID network
            self.kind, self.net = "fidelity", _fidelity_inception(path)
        elif classes == 1000:
            self.kind, self.net = "torchvision", _torchvision_inception(state)
        else:
            raise ValueError(f"metrics.inception_weights: {weights} is not an Inception-v3 state dict (expected an "
                             f"fc.weight of 1008 (torch-fidelity) or 1000 (torchvision) classes, got {classes})")
        self.net.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().clamp(-1, 1)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if self.kind == "fidelity":  # it takes uint8 images of any size and resizes them itself
            return self.net(((x + 1) * 127.5).round().to(torch.uint8)).reshape(len(x), -1).double()
        x = nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        mean, std = (torch.tensor(v, device=x.device).view(1, 3, 1, 1) for v in (self._MEAN, self._STD))
        return self.net(((x + 1) / 2 - mean) / std).double()


def _fidelity_inception(path: Path) -> nn.Module:
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if not _TORCH_FIDELITY_AVAILABLE:
        raise ModuleNotFoundError("metrics.inception_weights (torch-fidelity format) needs torch-fidelity: "
                                  "pip install torch-fidelity (with the torchvision release built for torch "
                                  f"{torch.__version__})")
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                              feature_extractor_weights_path=str(path))


def _torchvision_inception(state: dict) -> nn.Module:
    try:
        import torchvision
    except ImportError:
        raise ModuleNotFoundError("metrics.inception_weights (torchvision format) needs torchvision: pip install the "
                                  f"torchvision release built for torch {torch.__version__}") from None
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    net.load_state_dict(state)
    net.fc = nn.Identity()  # the 2048-d pool features, as FID uses them
    return net


class FeatureCache(nn.Module):
    """Wraps an extractor: the same tensor object passed again returns the features computed the first time."""

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor, self.num_features = extractor, extractor.num_features
        self._key: Optional[tuple] = None
        self._value: Optional[torch.Tensor] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (id(x), x.data_ptr(), tuple(x.shape), x._version)
        if key != self._key:
            self._key, self._value = key, self.extractor(x)
        return self._value


def feature_extractor(kind: str, inception_weights: Optional[str] = None) -> nn.Module:
    """"digits" -> DigitsFeatures; "inception" -> InceptionFeatures(inception_weights) (the path is required)."""
    if kind == "digits":
        return DigitsFeatures()
    if kind == "inception":
        if not inception_weights:
            raise ValueError("metrics.features=inception needs metrics.inception_weights=/path/to/weights.pth "
                             "(nothing is downloaded)")
        return InceptionFeatures(inception_weights)
    raise ValueError(f"metrics.features must be 'digits' or 'inception', got {kind!r}")
