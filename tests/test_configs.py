"""Every config of conf/ composes and instantiates; every loss of the library is selectable."""
import gzip
import pickle

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lightning_gans import losses
from lightning_gans.cli import train

GROUPS = ("data", "model", "loss", "trainer", "callbacks", "logger", "experiment")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (train.CONF_DIR / group).glob("*.yaml"))


def compose(tmp_path, *overrides):
    return train.compose_config([f"paths.output_dir={tmp_path}", *overrides])


def test_every_group_has_options_and_the_default_is_the_ring8_rsgan_experiment(tmp_path):
    for group in GROUPS:
        assert options(group), f"conf/{group}/ is empty"
    cfg = compose(tmp_path)
    assert cfg.data.name == "ring8" and cfg.loss.name == "rsgan" and cfg.loss.pairing == "paired"
    assert cfg.model.generator._target_.endswith("MLPGenerator") and cfg.trainer.accelerator == "cpu"
    # experiment=ring8 spells out the same run
    pinned = compose(tmp_path, "experiment=ring8")
    assert OmegaConf.to_container(pinned, resolve=True) == OmegaConf.to_container(cfg, resolve=True)


def test_every_library_loss_has_a_config_and_every_loss_config_builds(tmp_path):
    missing = sorted(set(losses.names()) - set(options("loss")))
    assert not missing, f"losses without a conf/loss/*.yaml: {missing}"
    for name in options("loss"):
        parts = train.build(compose(tmp_path, f"loss={name}"))
        assert parts["model"].loss.name == name, name
    r3 = train.build(compose(tmp_path, "experiment=r3gan", "data=grid25"))["model"]  # an experiment, not a loss
    assert r3.r1_gamma > 0 and r3.r2_gamma > 0 and r3.loss.pairing == "paired"


def test_every_gan_module_argument_is_overridable_and_defaults_come_from_its_signature(tmp_path):
    from lightning_gans.training import GANModule

    cfg = compose(tmp_path, "model.n_critic=3", "model.ema_decay=0.99", "model=dcgan", "data=digits")
    assert cfg.model.n_critic == 3 and cfg.model.ema_decay == 0.99
    model = train.build(cfg)["model"]
    assert model.n_critic == 3 and model.ema_decay == 0.99
    assert cfg.model.gp_weight == 0.0 and cfg.model.reg_interval == 1  # GANModule's defaults, stated nowhere in conf/
    dcgan = (train.CONF_DIR / "model" / "dcgan.yaml").read_text()
    assert "n_critic" not in dcgan and "ema_decay" not in dcgan and "betas" not in dcgan
    assert model.hparams["loss"] == {"name": "rsgan", "pairing": "paired", "h": "nonsat"}
    assert isinstance(model, GANModule)


def test_loss_parameters_reach_the_loss(tmp_path):
    model = train.build(compose(tmp_path, "loss=rsgan", "loss.pairing=all"))["model"]
    assert model.loss.pairing == "all"
    # what the shell passes for loss.omega='0.5*log(r)' (quotes eaten) is re-quoted for Hydra
    cfg = compose(tmp_path, "loss=designed", "loss.omega=0.5*log(r)", "loss.rho=exp(-t)")
    assert cfg.loss.omega == "0.5*log(r)" and cfg.loss.rho == "exp(-t)"
    assert train.build(cfg)["model"].loss.name == "designed"


def _fake_image_sets(root):
    from PIL import Image

    (root / "folder").mkdir()
    for i in range(4):
        Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(root / "folder" / f"{i}.png")
    (root / "mnist").mkdir()
    header = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28))
    with gzip.open(root / "mnist" / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + bytes(2 * 28 * 28))
    (root / "cifar").mkdir()
    with open(root / "cifar" / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, fh)
    return {"image_folder": root / "folder", "mnist": root / "mnist", "cifar10": root / "cifar"}


def test_every_data_config_instantiates_with_its_model(tmp_path):
    roots = _fake_image_sets(tmp_path)
    for name in options("data"):
        extra = [f"data.root={roots[name]}", "data.batch_size=2"] if name in roots else []
        model = "mlp" if name in ("ring8", "grid25", "spiral") else "dcgan"
        parts = train.build(compose(tmp_path, f"data={name}", f"model={model}", *extra))
        dm, gan = parts["datamodule"], parts["model"]
        dm.setup("fit")
        real = next(iter(dm.train_dataloader()))
        fake = gan.sample(n=real.shape[0])
        assert fake.shape[1:] == real.shape[1:], name
        assert gan.discriminator(real).shape == (real.shape[0],), name


def test_experiments_trainers_loggers_and_callbacks_instantiate(tmp_path):
    for exp in options("experiment"):
        parts = train.build(compose(tmp_path, f"experiment={exp}"))
        assert parts["trainer"].max_steps > 0, exp
    for logger in options("logger"):
        names = {type(lg).__name__ for lg in train.build(compose(tmp_path, f"logger={logger}"))["loggers"]}
        assert names == {"none": set(), "csv": {"CSVLogger"}, "tensorboard": {"TensorBoardLogger"},
                         "default": {"CSVLogger", "TensorBoardLogger"}}[logger]
    for trainer in options("trainer"):
        cfg = compose(tmp_path, f"trainer={trainer}")
        if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
            continue  # composes (checked above); instantiating needs the GPU
        assert train.build(cfg)["trainer"].max_steps == cfg.trainer.max_steps
    kinds = {type(c).__name__ for c in train.build(compose(tmp_path))["callbacks"]}
    assert {"MetricsCallback", "ModelCheckpoint", "TQDMProgressBar"} <= kinds


def test_player_steps_splits_the_budget():
    assert train.player_steps(6000, 1, "g") == 3000 and train.player_steps(6000, 1, "d") == 3000
    assert train.player_steps(6000, 2, "g") == 2000 and train.player_steps(6000, 2, "d") == 4000
    with pytest.raises(train.ConfigError, match="player must be 'g' or 'd'"):
        train.player_steps(10, 1, "x")
