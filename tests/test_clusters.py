"""k-means pseudo-labels (data.clusters=K): an unconditional GAN trained as a cluster-conditional one."""
import json

import lightning.pytorch as pl
import pytest
import torch

from lightning_gans.data import DigitsDataModule, ImageFolderDataModule
from lightning_gans.data.clusters import kmeans
from lightning_gans.metrics.callback import eval_labels
from lightning_gans.training import GANModule
from lightning_gans.training.rng import proportional_labels


def blobs(sizes=(50, 30, 20), seed=0):
    """Well-separated blobs of 2x2 'images' in a shuffled order, with each image's blob index."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-5.0] * 4, [0.0] * 4, [5.0] * 4])
    which = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    which = which[torch.randperm(len(which), generator=g)]
    x = centres[which] + 0.1 * torch.randn(len(which), 4, generator=g)
    return x.view(-1, 1, 2, 2), which


def test_kmeans_labels_recover_blobs_numbered_by_size():
    x, which = blobs(sizes=(20, 50, 30))
    labels = kmeans(x, 3)[0]
    # blob 1 is the largest (-> cluster 0), then blob 2 (-> 1), then blob 0 (-> 2)
    assert torch.equal(labels, torch.tensor([2, 0, 1])[which])
    assert torch.equal(kmeans(x, 3)[0], labels)  # deterministic


def test_proportional_labels_counts_and_order():
    y = proportional_labels([0.5, 0.3, 0.2], 7)  # shares 3.5, 2.1, 1.4: floors 3, 2, 1 and the largest remainder
    assert torch.bincount(y, minlength=3).tolist() == [4, 2, 1]
    y = proportional_labels(torch.tensor([3.0, 1.0]), 8)  # unnormalised weights are fine
    assert torch.bincount(y).tolist() == [6, 2]
    assert y[:4].tolist().count(1) == 1  # interleaved: the first half holds half of each label
    assert proportional_labels([0.0, 1.0], 3).tolist() == [1, 1, 1]


def test_digits_clusters_replace_the_labels():
    dm = DigitsDataModule(batch_size=16, clusters=12, num_classes=12)
    assert dm.label_kind == "cluster" and dm.data_classes == 12
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 8, 8) and y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) < 12
    freq = dm.class_frequencies
    assert len(freq) == 12 and abs(float(freq.sum()) - 1) < 1e-6
    assert torch.all(freq[:-1] >= freq[1:])  # numbered by size
    other = DigitsDataModule(batch_size=16, clusters=12, num_classes=12, seed=5)  # the run's seed: same clusters
    other.setup()
    assert torch.equal(other.labels, dm.labels)
    # the clusters are not the classes (no labels are used) but k-means on digits' pixels mostly follows them
    classes = DigitsDataModule(labels=True)
    classes.setup()
    purity = sum(int(torch.bincount(classes.labels[dm.labels == c]).max()) for c in range(12)) / len(dm.labels)
    assert 0.8 < purity < 1.0
    assert DigitsDataModule(labels=True).label_kind == "class"


def test_clusters_give_an_unlabelled_folder_labels(tmp_path):
    from PIL import Image

    for i in range(6):
        Image.new("L", (4, 4), color=0 if i < 4 else 255).save(tmp_path / f"{i}.png")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=4, channels=1, batch_size=2, clusters=2, num_classes=2)
    dm.setup()
    assert dm.labels.tolist() == [0, 0, 0, 0, 1, 1] and dm.class_frequencies.tolist() == pytest.approx([4 / 6, 2 / 6])


@pytest.mark.parametrize("kw, message", [
    (dict(clusters=1), "data.clusters must be null or an integer >= 2"),
    (dict(clusters=True), "data.clusters must be null or an integer >= 2"),
    (dict(clusters=20, num_classes=10), "has 20 k-means clusters (data.clusters)"),
    (dict(clusters=2000, num_classes=2000), "data.clusters=2000: more clusters than the 1347 items to cluster"),
])
def test_bad_clusters_name_the_argument(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DigitsDataModule(**kw).setup()


def small_module(k, **kw):
    from lightning_gans.nets import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, channels=1, image_size=8, width=8, num_classes=k)
    d = DCGANDiscriminator(channels=1, image_size=8, width=8, num_classes=k)
    return GANModule(g, d, loss="nsgan", num_classes=k, **kw)


def fit(m, dm, steps=2):
    pl.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_progress_bar=False,
               enable_checkpointing=False, enable_model_summary=False).fit(m, datamodule=dm)


def test_uniform_draws_over_clusters_are_refused():
    dm = DigitsDataModule(batch_size=16, clusters=5, num_classes=5)
    with pytest.raises(ValueError, match="set model.label_sampler=data"):
        fit(small_module(5), dm)


def test_generator_and_evaluation_labels_follow_the_cluster_sizes():
    dm = DigitsDataModule(batch_size=16, clusters=5, num_classes=5)
    m = small_module(5, label_sampler="data")
    fit(m, dm)
    freq = dm.class_frequencies
    assert torch.allclose(m.class_frequencies, freq)
    assert (torch.bincount(m.sample_labels(4000), minlength=5) / 4000 - freq).abs().max() < 0.03
    # the metrics leave the labels to sample(), which draws them as training did: in the clusters' proportions
    assert eval_labels(m, 1000, dm) is None
    counts = torch.bincount(proportional_labels(freq, 1000), minlength=5)
    assert int(counts.sum()) == 1000 and (counts - freq * 1000).abs().max() < 1
    assert torch.equal(m.sample(n=1000, seed=3), m.sample(n=1000, seed=3, labels=proportional_labels(freq, 1000)))
    assert not torch.equal(m.sample(n=1000, seed=3), m.sample(n=1000, seed=3, labels=torch.arange(1000) % 5))


def test_lgans_train_with_clusters_reports_no_class_accuracy(tmp_path):
    from lightning_gans.cli import train
    from lightning_gans.training.runs import load_run

    overrides = ["experiment=digits_cond", "model.num_classes=6", "data.clusters=6", "model.label_sampler=data",
                 "budget_steps=4", "callbacks.metrics.every_n_steps=0", "callbacks.metrics.kid_subsets=2",
                 "callbacks.metrics.plot=false", "logger=none", "trainer.enable_progress_bar=false",
                 f"paths.output_dir={tmp_path}"]
    train.run(train.compose_config(overrides))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert isinstance(metrics["frechet_distance"], float) and "class_accuracy" not in metrics
    # the checkpoint keeps the frequencies, so lgans-sample draws labels as training did
    run = load_run(tmp_path)
    dm = DigitsDataModule(clusters=6, num_classes=6)
    assert run.class_frequencies == pytest.approx(dm.class_frequencies.tolist())
    from lightning_gans.cli.sample import sample_run

    _, y = sample_run(run, 600, seed=0)
    counts = torch.bincount(y, minlength=6)
    assert int(counts.sum()) == 600 and (counts - dm.class_frequencies * 600).abs().max() < 1


def test_toy_clusters_label_fresh_samples_with_their_nearest_centre():
    from lightning_gans.data import ToyDataModule
    from lightning_gans.data.toys import make_toy

    dm = ToyDataModule("grid25", batch_size=64, clusters=25, num_classes=25)
    assert dm.label_kind == "cluster" and abs(float(dm.class_frequencies.sum()) - 1) < 1e-6
    # 25 well-separated Gaussians: k-means finds their centres
    truth = make_toy("grid25").centers.float()
    assert float(torch.cdist(dm.centres, truth).min(dim=1).values.max()) < 0.05
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 2) and torch.equal(y, torch.cdist(x, dm.centres).argmin(dim=1))
    # every sample's label names the centre of its own Gaussian
    own = torch.cdist(x, truth).argmin(dim=1)
    assert torch.equal(torch.cdist(truth[own], dm.centres).argmin(dim=1), y)


@pytest.mark.parametrize("kw, message", [
    (dict(num_classes=8), "serves no labels"),
    (dict(clusters=8), "has 8 k-means clusters"),
    (dict(clusters=1, num_classes=1), "data.clusters must be null or an integer >= 2"),
])
def test_toy_clusters_and_num_classes_must_agree(kw, message):
    from lightning_gans.data import ToyDataModule

    with pytest.raises(ValueError, match=message):
        ToyDataModule("ring8", **kw)
