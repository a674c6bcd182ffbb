"""Image datasets. Nothing is ever downloaded.

- `DigitsDataModule`: scikit-learn's bundled 8×8 handwritten digits (1,797
  images shipped inside scikit-learn), split once, deterministically, into a
  training split (75 %, what the GAN and the metric classifier see) and a
  test split, stratified by class.
- `ImageFolderDataModule`: every image file under a local folder (recursive).
- `MNISTDataModule`: the four IDX files from a local folder.
- `CIFAR10DataModule`: the python-pickle batches from a local folder.

All serve batches of images (B, C, S, S) in [-1, 1]. Digits also has labels: with
`num_classes=10` (a conditional model; conf/data/digits.yaml passes model.num_classes) or
`labels=True` it serves (images, labels) and `class_frequencies`. `clusters=K` replaces the labels
(or gives any dataset labels) with K pseudo-labels: seeded k-means clusters of the training images'
pixels (clusters.py), so that an unconditional GAN can be trained as a cluster-conditional one with
no human labels; `label_kind` then says "cluster". `fraction` keeps a fixed, seeded subset of the training images (stratified by class when there are labels), for
small-data studies; the subset depends on `fraction_seed` only, never on the run's seed, so
every seed of a study trains on the same images.
"""
from __future__ import annotations

import abc
import gzip
import pickle
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .clusters import check_clusters, kmeans

__all__ = ["DigitsDataModule", "ImageFolderDataModule", "MNISTDataModule", "CIFAR10DataModule", "digits_split"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def digits_split(test_fraction: float = 0.25, seed: int = 0):
    """(x_train, y_train, x_test, y_test): digits as (N, 1, 8, 8) float32 in [-1, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.from_numpy(d.data.astype(np.float32) / 16.0 * 2.0 - 1.0).view(-1, 1, 8, 8)
    y = torch.from_numpy(d.target.astype(np.int64))
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=d.target)
    idx_tr, idx_te = torch.from_numpy(np.sort(idx_tr)), torch.from_numpy(np.sort(idx_te))
    return x[idx_tr], y[idx_tr], x[idx_te], y[idx_te]


class _Images(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i] if self.y is None else (self.x[i], self.y[i])


def subset_indices(n: int, fraction: float, labels: torch.Tensor | None, seed: int) -> torch.Tensor:
    """Sorted indices of a fixed, seeded `fraction` of n items: round(fraction·n_c) (>= 1) of each class c."""
    g = torch.Generator().manual_seed(seed)
    groups = [torch.arange(n)] if labels is None else [torch.nonzero(labels == c).flatten()
                                                        for c in torch.unique(labels)]
    keep = [idx[torch.randperm(len(idx), generator=g)[:max(1, round(fraction * len(idx)))]] for idx in groups]
    return torch.cat(keep).sort().values


class _ImageDataModule(pl.LightningDataModule, abc.ABC):
    """Shared loader logic: subclasses fill `self.images` (N, C, S, S) in `_load`."""

    channels: int = 1
    image_size: int = 8
    default_evaluator = "none"
    data_classes: int | None = None  # classes of a labelled dataset (its `_load_labels`); None: no labels

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 0,
                 channels: int | None = None, image_size: int | None = None, evaluator: str | None = None,
                 num_classes: int | None = None, labels: bool | None = None, fraction: float = 1.0,
                 fraction_seed: int = 0, clusters: int | None = None, cluster_seed: int = 0):
        super().__init__()
        name = type(self).__name__
        check_clusters(clusters)
        if clusters is not None:
            self.data_classes = clusters  # the model is conditional on the cluster index
        self.clusters, self.cluster_seed = clusters, cluster_seed
        self.label_kind = None if not self.data_classes else "class" if clusters is None else "cluster"
        if num_classes is not None and num_classes != self.data_classes:
            what = "k-means clusters (data.clusters)" if clusters is not None else "classes"
            has = f"has {self.data_classes} {what}" if self.data_classes else "serves no labels"
            raise ValueError(f"num_classes: the model is conditional on num_classes={num_classes} but {name} {has}; "
                             + (f"set model.num_classes={self.data_classes}" if self.data_classes else
                                "use labelled data (data=digits) or model.num_classes=null"))
        if labels and not self.data_classes:
            raise ValueError(f"data.labels=true: {name} serves no labels")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"data.fraction must be a number in (0, 1], got {fraction!r}")
        # labels are served to a conditional model automatically, or when asked for
        self.serve_labels = bool(labels) if labels is not None else num_classes is not None
        self.num_classes, self.fraction, self.fraction_seed = num_classes, float(fraction), fraction_seed
        self.labels: torch.Tensor | None = None
        self.evaluator = evaluator or self.default_evaluator  # which metrics MetricsCallback computes
        if batch_size <= 0:
            raise ValueError(f"data.batch_size must be positive, got {batch_size}")
        # Fixed-format datasets accept their own shape (the configs state it for the nets) and nothing else.
        for key, given in (("channels", channels), ("image_size", image_size)):
            if given is not None and given != getattr(self, key):
                raise ValueError(f"{type(self).__name__} has {key} = {getattr(self, key)}, got data.{key}={given}")
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.images: torch.Tensor | None = None

    @property
    def dims(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @abc.abstractmethod
    def _load(self) -> torch.Tensor:
        """The whole dataset as (N, C, S, S) float32 in [-1, 1]."""

    def _load_labels(self) -> torch.Tensor | None:
        """The labels of `_load`'s images, int64 (N,) in [0, data_classes); None for unlabelled data."""
        return None

    def setup(self, stage: str | None = None) -> None:
        if self.images is None:
            images, labels = self._load(), self._load_labels()
            if self.fraction < 1:
                idx = subset_indices(len(images), self.fraction, labels, self.fraction_seed)
                images, labels = images[idx], (labels[idx] if labels is not None else None)
            if self.clusters is not None:
                labels = kmeans(images, self.clusters, self.cluster_seed)[0]  # each image's cluster of pixels
            self.images, self.labels = images, labels

    @property
    def class_frequencies(self) -> torch.Tensor | None:
        """Share of each class among the training images, (K,) float (label_sampler="data" draws from it)."""
        self.setup()
        if self.labels is None:
            return None
        return torch.bincount(self.labels, minlength=self.data_classes).float() / len(self.labels)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        if len(self.images) < self.batch_size:  # drop_last would silently yield no batch at all
            raise ValueError(f"{type(self).__name__}: {len(self.images)} images but data.batch_size={self.batch_size}; "
                             "lower data.batch_size or add images")
        g = torch.Generator().manual_seed(self.seed)
        labels = self.labels if self.serve_labels else None
        return DataLoader(_Images(self.images, labels), batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, generator=g, persistent_workers=self.num_workers > 0)

    def sample_real(self, n: int, seed: int = 1234) -> torch.Tensor:
        self.setup()
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self.images), generator=g)[:n]
        return self.images[idx]


class DigitsDataModule(_ImageDataModule):
    """scikit-learn's 8×8 digits, training split: (B, 1, 8, 8) in [-1, 1], with labels 0..9 when asked."""

    channels, image_size = 1, 8
    default_evaluator = "digits"
    data_classes = 10

    def _load(self) -> torch.Tensor:
        return digits_split()[0]

    def _load_labels(self) -> torch.Tensor:
        return digits_split()[1]


def _missing(kind: str, root, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{kind}: data not found at {root!s}. Nothing is downloaded: {what} "
        f"Then pass the folder with data.root=/path/to/folder."
    )


class ImageFolderDataModule(_ImageDataModule):
    """Every image under `root` (recursively), resized to `image_size`, `channels` 1 (L) or 3 (RGB)."""

    def __init__(self, root: str | None = None, image_size: int = 32, channels: int = 3, **kw):
        self.image_size, self.channels = image_size, channels
        super().__init__(**kw)
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3, got {channels}")
        self.root, self.image_size, self.channels = root, image_size, channels
        hint = "put image files (png, jpg, ...) in a folder, in any sub-folders."
        if root is None or not Path(root).expanduser().is_dir():
            raise _missing("image folder", root, hint)
        self.files = sorted(p for p in Path(root).expanduser().rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise _missing("image folder", root, f"the folder exists but holds no image file ({', '.join(IMAGE_EXTENSIONS)}); "
                           + hint)

    def _load(self) -> torch.Tensor:
        from PIL import Image

        mode, s = ("L" if self.channels == 1 else "RGB"), self.image_size
        out = np.empty((len(self.files), s, s, self.channels), dtype=np.uint8)
        for i, f in enumerate(self.files):
            with Image.open(f) as im:
                arr = np.asarray(im.convert(mode).resize((s, s), Image.BILINEAR))
            out[i] = arr.reshape(s, s, self.channels)
        return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class MNISTDataModule(_ImageDataModule):
    """MNIST from the IDX files in `root`: (B, 1, 28, 28) in [-1, 1]."""

    channels, image_size = 1, 28
    FILES = ("train-images-idx3-ubyte",)

    def __init__(self, root: str | None = None, **kw):
        super().__init__(**kw)
        self.root = root
        self.path = self._find(root)

    def _find(self, root) -> Path:
        hint = ("download train-images-idx3-ubyte(.gz) from an MNIST mirror yourself and put it in a folder "
                "(a 'MNIST/raw' sub-folder is also searched).")
        if root is not None:
            r = Path(root).expanduser()
            for d in (r, r / "raw", r / "MNIST" / "raw"):
                for name in self.FILES:
                    for suffix in ("", ".gz"):
                        if (d / (name + suffix)).is_file():
                            return d / (name + suffix)
        raise _missing("MNIST", root, hint)

    def _load(self) -> torch.Tensor:
        x = _read_idx(self.path)  # (N, 28, 28) uint8
        return torch.from_numpy(x.copy()).unsqueeze(1).float() / 127.5 - 1.0


class CIFAR10DataModule(_ImageDataModule):
    """CIFAR-10 from the python batches in `root`: (B, 3, 32, 32) in [-1, 1]."""

    channels, image_size = 3, 32

    def __init__(self, root: str | None = None, **kw):
        super().__init__(**kw)
        self.root = root
        hint = ("extract cifar-10-python.tar.gz yourself so that data_batch_1 ... data_batch_5 lie in the folder "
                "(or in its cifar-10-batches-py sub-folder).")
        self.dir = None
        if root is not None:
            r = Path(root).expanduser()
            for d in (r, r / "cifar-10-batches-py"):
                if (d / "data_batch_1").is_file():
                    self.dir = d
        if self.dir is None:
            raise _missing("CIFAR-10", root, hint)

    def _load(self) -> torch.Tensor:
        batches = []
        for f in sorted(self.dir.glob("data_batch_*")):
            with open(f, "rb") as fh:
                batches.append(pickle.load(fh, encoding="bytes")[b"data"])
        x = np.concatenate(batches).reshape(-1, 3, 32, 32)
        return torch.from_numpy(x).float() / 127.5 - 1.0
