"""LightningDataModules: 2-D toys generated on the fly and local image datasets (no downloads)."""
from .images import CIFAR10DataModule, DigitsDataModule, ImageFolderDataModule, MNISTDataModule, digits_split
from .toys import TOYS, ToyDataModule, ToyDistribution, make_toy

__all__ = [
    "ToyDataModule", "ToyDistribution", "make_toy", "TOYS",
    "DigitsDataModule", "ImageFolderDataModule", "MNISTDataModule", "CIFAR10DataModule", "digits_split",
]
