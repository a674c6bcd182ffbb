"""Nets: shapes, spectral norm, the image sizes the DCGAN pair supports."""
import pytest
import torch

from lightning_gans.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, n_upsamplings


def test_mlp_pair_shapes():
    g, d = MLPGenerator(latent_dim=8, out_dim=2, hidden=32, layers=2), MLPDiscriminator(in_dim=2, hidden=32)
    x = g(torch.randn(5, 8))
    assert x.shape == (5, 2) and g.latent_dim == 8
    assert d(x).shape == (5,)


@pytest.mark.parametrize("size,channels", [(8, 1), (28, 1), (32, 3)])
def test_dcgan_pair_shapes(size, channels):
    g = DCGANGenerator(latent_dim=16, channels=channels, image_size=size, width=8)
    d = DCGANDiscriminator(channels=channels, image_size=size, width=8)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, channels, size, size)
    assert float(x.detach().abs().max()) <= 1.0
    assert d(x).shape == (3,)


def test_n_upsamplings():
    assert n_upsamplings(8) == (4, 1) and n_upsamplings(28) == (7, 2) and n_upsamplings(64) == (4, 4)
    with pytest.raises(ValueError, match="image size"):
        n_upsamplings(30)


def test_spectral_norm_option_bounds_the_layers():
    d = MLPDiscriminator(hidden=16, layers=2, spectral_norm=True)
    assert any("parametrizations" in n for n, _ in d.named_parameters())
    d(torch.randn(4, 2))  # power iteration runs in train mode
    for m in d.modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.linalg.matrix_norm(m.weight, ord=2) < 1.1
    conv = DCGANDiscriminator(channels=1, image_size=8, width=4, spectral_norm=True)
    assert any("parametrizations" in n for n, _ in conv.named_parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        MLPGenerator(hidden=0)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLPDiscriminator(activation="swish")


def test_levels_deepen_the_dcgan_pair_on_small_images():
    g = DCGANGenerator(latent_dim=8, channels=1, image_size=8, width=4, levels=2)
    d = DCGANDiscriminator(channels=1, image_size=8, width=4, levels=2)
    assert g.base == 2 and sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules()) == 2
    assert sum(isinstance(m, torch.nn.Conv2d) for m in d.modules()) == 2
    assert d(g(torch.randn(3, 8))).shape == (3,)
    assert n_upsamplings(8, levels=2) == (2, 2) and n_upsamplings(32, levels=3) == (4, 3)
    with pytest.raises(ValueError, match="levels=3: image_size 8 must be base·2\\^levels with base >= 2"):
        DCGANGenerator(image_size=8, levels=3)


def test_unconditional_nets_keep_their_parameter_names():
    # checkpoints of unconditional runs made before conditional nets existed still load
    assert set(MLPDiscriminator(hidden=8, layers=1).state_dict()) == {"net.0.weight", "net.0.bias", "net.2.weight",
                                                                      "net.2.bias"}
    assert {k.split(".")[0] for k in DCGANDiscriminator(width=4).state_dict()} == {"convs", "fc"}
    assert {k.split(".")[0] for k in DCGANGenerator(width=4).state_dict()} == {"fc", "ups"}
    assert {k.split(".")[0] for k in DCGANGenerator(width=4, num_classes=3).state_dict()} == {"label", "fc", "ups"}
