"""Generator / discriminator pairs.

- `MLPGenerator` / `MLPDiscriminator` (mlp.py): for 2-D toys (or any flat data).
- `DCGANGenerator` / `DCGANDiscriminator` (dcgan.py): DCGAN-style convolutional pair for
  square images of any size that halves down to 4..7 pixels (8, 28, 32, 64).

Every discriminator returns raw logits of shape (B,) (the losses take (N,)),
and takes `spectral_norm=True` to wrap its linear/conv layers in
`torch.nn.utils.parametrizations.spectral_norm`. Generators expose
`latent_dim` and produce data in [-1, 1] for images (tanh) or unbounded
values for toys.

Every net takes `num_classes=K` for a class-conditional GAN: generators are then called as
G(z, y) (a label embedding concatenated to z, or for DCGANGenerator conditional batch norm with
`conditioning="cbn"`) and discriminators as D(x, y) (a projection
discriminator, Miyato & Koyama 2018); y is an int64 (B,) of labels in [0, K). See layers.py.
"""
from .dcgan import DCGANDiscriminator, DCGANGenerator, n_upsamplings
from .mlp import MLPDiscriminator, MLPGenerator

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator", "n_upsamplings"]
