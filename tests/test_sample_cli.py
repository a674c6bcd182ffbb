"""lgans-sample and GANModule.load_generator: round trips from tiny runs, labels, PNGs, bad input."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_gans.cli import sample, train
from lightning_gans.training import GANModule

ROOT = Path(__file__).resolve().parents[1]
TINY = ["budget_steps=4", "callbacks.metrics.every_n_steps=0", "callbacks.metrics.kid_subsets=2",
        "callbacks.metrics.plot=false", "callbacks.checkpoint.every_n_train_steps=2",
        "callbacks.samples.every_n_steps=2",
        "logger=none", "trainer.enable_progress_bar=false"]


def train_tiny(out: Path, *overrides) -> Path:
    train.run(train.compose_config([*overrides, *TINY, f"paths.output_dir={out}"]))
    return out


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("cond") / "run", "experiment=digits_cond")


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("plain") / "run", "experiment=digits", "model.generator.width=8")


def cli(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "lightning_gans.cli.sample", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_run_has_its_config_checkpoints_and_class_accuracy(cond_run):
    import json

    assert (cond_run / "config.yaml").is_file() and (cond_run / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((cond_run / "metrics.json").read_text())
    for key in ("frechet_distance", "kid", "precision", "recall", "density", "coverage", "class_accuracy"):
        assert isinstance(metrics[key], float), key


def test_npz_round_trip_matches_the_python_api(cond_run, tmp_path):
    out = tmp_path / "s.npz"
    p = cli([cond_run / "checkpoints" / "last.ckpt", "--n", 30, "--out", out, "--seed", 3, "--batch-size", 7])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "sampling" in p.stderr  # the progress bar
    data = np.load(out)
    assert data["x"].shape == (30, 1, 8, 8) and data["x"].dtype == np.float32
    assert data["y"].tolist() == [i % 10 for i in range(30)]
    # the same samples as GANModule.sample(n, seed) of the module in the checkpoint (EMA generator)
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(cond_run / "config.yaml")
    m = GANModule.load_from_checkpoint(cond_run / "checkpoints" / "last.ckpt", weights_only=True,
                                       generator=instantiate(cfg.model.generator),
                                       discriminator=instantiate(cfg.model.discriminator))
    expected = m.sample(n=30, seed=3)
    np.testing.assert_allclose(data["x"], expected.numpy(), rtol=1e-5, atol=1e-6)
    g = GANModule.load_generator(cond_run)
    assert not g.training and not any(p.requires_grad for p in g.parameters())
    def same(a, b):  # every weight and buffer (the conditional generator's per-class ones included)
        return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)

    assert same(g.state_dict(), m.g_ema.module.state_dict())
    raw = GANModule.load_generator(cond_run, ema=False)
    assert same(raw.state_dict(), m.generator.state_dict())


def test_labels_pngs_and_grid(cond_run, tmp_path):
    sample.main([str(cond_run), "--n", "12", "--labels", "0,3,7", "--out", str(tmp_path / "l.npz"),
                 "--no-progress", "--no-ema"])
    assert np.load(tmp_path / "l.npz")["y"].tolist() == [0, 3, 7] * 4
    sample.main([str(cond_run), "--n", "6", "--labels", "7", "--out", str(tmp_path / "png") + "/",
                 "--grid", str(tmp_path / "grid.png"), "--no-progress"])
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == [f"{i:06d}_class7.png" for i in range(6)]
    from PIL import Image

    with Image.open(tmp_path / "png" / names[0]) as im:
        assert im.size == (8, 8)
    with Image.open(tmp_path / "grid.png") as im:  # one row (label 7) of 8 images of 8 px, 2 px padding, x4
        assert im.size == (4 * (2 + 8 * 10), 4 * (2 + 10))


def test_unconditional_run(plain_run, tmp_path):
    sample.main([str(plain_run / "checkpoints" / "step000002.ckpt"), "--n", "5", "--out", str(tmp_path / "u.npz"),
                 "--no-progress"])
    data = np.load(tmp_path / "u.npz")
    assert data["x"].shape == (5, 1, 8, 8) and "y" not in data.files
    g = GANModule.load_generator(plain_run / "checkpoints" / "last.ckpt")
    assert g(torch.zeros(2, g.latent_dim)).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("args,message", [
    (["--labels", "0,12"], r"--labels: expected labels in \[0, 10\), got '0,12'"),
    (["--labels", "a"], "--labels: expected comma-separated integers"),
    (["--n", "0"], "--n: expected a positive integer, got 0"),
    (["--out", "x.txt"], "--out: expected a .npz file or a directory ending in '/'"),
])
def test_bad_arguments_are_one_line_before_sampling(cond_run, tmp_path, args, message, capsys):
    with pytest.raises(SystemExit) as e:
        sample.main([str(cond_run), "--out", str(tmp_path / "s.npz"), *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "s.npz").exists()


def test_labels_for_an_unconditional_run_and_foreign_checkpoints(plain_run, tmp_path, capsys):
    p = cli([plain_run, "--labels", "1", "--out", tmp_path / "s.npz"])
    assert p.returncode == 2 and p.stderr.strip() == ("lgans-sample: --labels: the run is unconditional "
                                                      "(num_classes=None); drop --labels")
    foreign = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    for path in (foreign, junk, tmp_path / "missing.ckpt", tmp_path):
        with pytest.raises(ValueError, match="not a lightning-gans run checkpoint|no such file|no checkpoint found"):
            GANModule.load_generator(path)
        with pytest.raises(SystemExit) as e:
            sample.main([str(path), "--out", str(tmp_path / "s.npz")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
        assert err.startswith("lgans-sample: checkpoint: ")
