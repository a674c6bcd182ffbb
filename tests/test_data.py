"""Data modules: toys generated on the fly, digits shipped with scikit-learn, local image sets, clear errors."""
import gzip
import pickle

import numpy as np
import pytest
import torch

from lightning_gans.data import (CIFAR10DataModule, DigitsDataModule, ImageFolderDataModule, MNISTDataModule,
                                 ToyDataModule, digits_split, make_toy)


def test_ring8_and_grid25_follow_spec():
    ring = make_toy("ring8")
    assert ring.sigma == 0.02 and ring.n_modes == 8
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    assert torch.allclose(ring.centers[2], torch.tensor([0.0, 2.0], dtype=torch.float64), atol=1e-12)
    grid = make_toy("grid25")
    assert grid.sigma == 0.05 and grid.n_modes == 25
    assert sorted(set(grid.centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_toy_samples_are_near_their_centres():
    for name in ("ring8", "grid25", "spiral"):
        dist = make_toy(name)
        x = dist.sample(4000, torch.Generator().manual_seed(0))
        assert x.shape == (4000, 2) and x.dtype == torch.float32
        d = torch.cdist(x.double(), dist.centers).min(1).values
        assert float((d <= 3 * dist.sigma).float().mean()) > 0.98
        # every mode is populated
        modes = dist.modes[torch.cdist(x.double(), dist.centers).argmin(1)]
        assert len(torch.unique(modes)) == dist.n_modes


def test_toy_datamodule_batches_are_fresh_and_reproducible():
    dm = ToyDataModule("grid25", batch_size=32, steps_per_epoch=5, seed=3)
    batches = list(dm.train_dataloader())
    assert len(batches) == 5 and all(b.shape == (32, 2) for b in batches)
    assert not torch.equal(batches[0], batches[1])
    again = list(ToyDataModule("grid25", batch_size=32, steps_per_epoch=5, seed=3).train_dataloader())
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    second_epoch = list(dm.train_dataloader())
    assert not torch.equal(second_epoch[0], batches[0])


def test_toy_bad_arguments():
    with pytest.raises(ValueError, match="unknown toy dataset 'moons'"):
        ToyDataModule("moons")
    with pytest.raises(ValueError, match="batch_size must be positive"):
        ToyDataModule("ring8", batch_size=0)


def test_digits_split_and_module():
    x_tr, y_tr, x_te, y_te = digits_split()
    assert x_tr.shape == (1347, 1, 8, 8) and x_te.shape == (450, 1, 8, 8)
    assert float(x_tr.min()) == -1.0 and float(x_tr.max()) == 1.0
    assert set(y_tr.tolist()) == set(range(10))
    dm = DigitsDataModule(batch_size=16)
    assert dm.dims == (1, 8, 8)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (16, 1, 8, 8)
    with pytest.raises(ValueError, match="image_size = 8"):
        DigitsDataModule(image_size=28)


def test_missing_paths_say_what_to_put_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded.*train-images-idx3-ubyte"):
        MNISTDataModule(root=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        CIFAR10DataModule(root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="image folder.*data.root"):
        ImageFolderDataModule(root=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no image file"):
        ImageFolderDataModule(root=str(tmp_path / "empty"))


def test_image_folder_reads_and_resizes(tmp_path):
    from PIL import Image

    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((20, 30, 3), 40 * i, dtype=np.uint8)).save(sub / f"{i}.png")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, channels=1, batch_size=4)
    dm.setup()
    assert dm.images.shape == (6, 1, 16, 16)
    assert float(dm.images.min()) == -1.0
    assert next(iter(dm.train_dataloader())).shape == (4, 1, 16, 16)


def test_mnist_idx_and_cifar_pickles(tmp_path):
    imgs = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    header = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in imgs.shape)
    (tmp_path / "raw").mkdir()
    with gzip.open(tmp_path / "raw" / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + imgs.tobytes())
    dm = MNISTDataModule(root=str(tmp_path), batch_size=2)
    dm.setup()
    assert dm.images.shape == (3, 1, 28, 28)
    assert torch.allclose(dm.images[0, 0], torch.from_numpy(imgs[0]).float() / 127.5 - 1)

    cdir = tmp_path / "cifar-10-batches-py"
    cdir.mkdir()
    data = np.random.default_rng(0).integers(0, 256, (4, 3072), dtype=np.uint8)
    for k in (1, 2):
        with open(cdir / f"data_batch_{k}", "wb") as fh:
            pickle.dump({b"data": data, b"labels": [0] * 4}, fh)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=2)
    dm.setup()
    assert dm.images.shape == (8, 3, 32, 32)
    assert torch.allclose(dm.images[0], torch.from_numpy(data[0].reshape(3, 32, 32)).float() / 127.5 - 1)


def test_digits_fraction_is_a_fixed_stratified_subset():
    from lightning_gans.data import DigitsDataModule

    a, b = DigitsDataModule(fraction=0.1, seed=0), DigitsDataModule(fraction=0.1, seed=5)
    a.setup(), b.setup()
    assert torch.equal(a.images, b.images)  # the run's seed does not change the subset
    c = DigitsDataModule(fraction=0.1, fraction_seed=1)
    c.setup()
    assert not torch.equal(a.images, c.images)
    assert 130 <= len(a.images) <= 140 and torch.bincount(a.labels, minlength=10).min() >= 13
    assert abs(float(a.class_frequencies.sum()) - 1) < 1e-6
    full = DigitsDataModule()
    full.setup()
    assert len(full.images) == 1347 and full.class_frequencies.shape == (10,)
    with pytest.raises(ValueError, match=r"data.fraction must be a number in \(0, 1\], got 0"):
        DigitsDataModule(fraction=0)
    with pytest.raises(ValueError, match="data.labels=true: ImageFolderDataModule serves no labels"):
        from lightning_gans.data import ImageFolderDataModule

        ImageFolderDataModule(root="/nonexistent", labels=True)
