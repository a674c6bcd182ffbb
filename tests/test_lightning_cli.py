"""GANModule and the data modules under Lightning's own LightningCLI (docs/cli.md, "LightningCLI")."""
import pytest

pytest.importorskip("jsonargparse", reason="LightningCLI needs the [cli] extra (jsonargparse)")

from lightning.pytorch.cli import LightningCLI  # noqa: E402

from lightning_gans import GANModule  # noqa: E402
from lightning_gans.data import DigitsDataModule  # noqa: E402


def test_one_fit_through_lightning_cli(tmp_path):
    args = [
        "fit",
        "--model.generator.class_path=lightning_gans.nets.DCGANGenerator",
        "--model.generator.init_args.channels=1", "--model.generator.init_args.image_size=8",
        "--model.generator.init_args.latent_dim=16",
        "--model.discriminator.class_path=lightning_gans.nets.DCGANDiscriminator",
        "--model.discriminator.init_args.channels=1", "--model.discriminator.init_args.image_size=8",
        "--model.loss=nsgan", "--model.r1_gamma=0.1",
        "--data.batch_size=32",
        "--trainer.max_steps=4", "--trainer.accelerator=cpu", "--trainer.logger=false",
        "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    cli = LightningCLI(GANModule, DigitsDataModule, args=args, save_config_kwargs={"overwrite": True})
    model = cli.model
    assert isinstance(model, GANModule) and model.g_steps == 2 and model.d_steps == 2
    assert type(model.generator).__name__ == "DCGANGenerator" and model.r1_gamma == 0.1
    assert model.sample(n=3).shape == (3, 1, 8, 8)
