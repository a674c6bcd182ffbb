"""Building blocks shared by the nets: activations, argument checks, MLP stacks, and the two
ways a label enters a net (Miyato & Koyama 2018, "cGANs with Projection Discriminator").

- generators: `conditional_input`, y -> a learned vector e(y) concatenated to z, so G(z, y) is G's
  usual input layer applied to [z, e(y)]; or `ConditionalBatchNorm`, γ(y)·BN(h) + β(y) in place of
  each batch norm (DCGANGenerator(conditioning="cbn"), what conf/model/dcgan.yaml uses). With the
  concatenation, the label only shifts the hidden units of the 8x8 digits generator (one hidden
  layer; z's directions are shared by every class) and its samples collapsed within each class
  (issue 10; scripts/digits_cond_probe.py); per-class gains let each class scale z's directions.
- discriminators (`Projection`, `conditional_output`): D(x, y) = ψ(φ(x)) + <e(y), φ(x)>, with φ the discriminator's
  features and ψ its unconditional output layer. The inner product is the log density-ratio term of
  the paper's derivation; concatenating y to x instead is what they found to train worse.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

__all__ = ["activation", "check_positive", "mlp", "maybe_sn", "check_num_classes", "check_labels",
           "Projection", "ConditionalBatchNorm", "conditional_input", "conditional_output"]


def activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "tanh": nn.Tanh}
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(acts)}")
    return acts[name]()


def check_positive(**kw) -> None:
    for k, v in kw.items():
        if int(v) <= 0:
            raise ValueError(f"{k} must be a positive integer, got {v}")


def check_num_classes(num_classes: Optional[int]) -> None:
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be None (unconditional) or an int >= 1, got {num_classes!r}")


def maybe_sn(module: nn.Module, on: bool) -> nn.Module:
    return _sn(module) if on else module


def mlp(d_in: int, d_out: int, hidden: int, layers: int, act: str, sn: bool) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [maybe_sn(nn.Linear(d, hidden), sn), activation(act)]
        d = hidden
    mods.append(maybe_sn(nn.Linear(d, d_out), sn))
    return nn.Sequential(*mods)


def check_labels(net: nn.Module, y: Optional[torch.Tensor], n: int) -> Optional[torch.Tensor]:
    """Check the labels a net was called with against its num_classes (one line naming what is wrong)."""
    k, name = net.num_classes, type(net).__name__
    if k is None:
        if y is not None:
            raise ValueError(f"{name}: labels given to an unconditional net (num_classes=None)")
        return None
    if y is None:
        raise ValueError(f"{name}(num_classes={k}) needs labels: call it as net(input, labels)")
    y = y.reshape(-1)
    if y.dtype.is_floating_point or len(y) != n:
        raise ValueError(f"{name}: labels must be {n} integers (one per sample), got {tuple(y.shape)} {y.dtype}")
    # on CUDA the range check would synchronise every forward: there nn.Embedding's own assert catches it
    if len(y) and not y.is_cuda and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ValueError(f"{name}: labels must lie in [0, {k}), got values in [{int(y.min())}, {int(y.max())}]")
    return y.long()


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose affine gain and bias are per class: γ(y) · BN(h) + β(y) (de Vries et al. 2017; the
    generators of Miyato & Koyama 2018 and BigGAN). γ starts at 1 and β at 0, so at init it is plain BN."""

    def __init__(self, num_classes: int, features: int, dims: int = 1):
        super().__init__()
        self.bn = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(features, affine=False)
        self.gain, self.bias = nn.Embedding(num_classes, features), nn.Embedding(num_classes, features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = (len(y), -1) + (1,) * (h.dim() - 2)
        return self.bn(h) * self.gain(y).to(h.dtype).view(shape) + self.bias(y).to(h.dtype).view(shape)


class Projection(nn.Module):
    """φ (B, F), y (B,) -> <e(y), φ> (B,): the term a projection discriminator adds to its output ψ(φ)."""

    def __init__(self, num_classes: int, features: int, sn: bool):
        super().__init__()
        embed = nn.Embedding(num_classes, features)
        # Glorot, as in Miyato & Koyama's code: nn.Embedding's N(0, 1) gives rows of norm sqrt(features), and the
        # projection term then swamps ψ (135x its std at init for experiment=digits_cond; issue 10)
        nn.init.xavier_uniform_(embed.weight)
        # the embedding is a linear map of one-hot labels: spectral norm bounds it like D's other layers
        self.embed = maybe_sn(embed, sn)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.embed(y).to(h.dtype) * h).sum(dim=1)


def conditional_output(net: nn.Module, h: torch.Tensor, y: Optional[torch.Tensor], out: nn.Module) -> torch.Tensor:
    """ψ(φ) (B,), plus <e(y), φ> when `net` is conditional (its `projection`); checks y against net.num_classes."""
    y = check_labels(net, y, len(h))
    logits = out(h).squeeze(1)
    return logits if y is None else logits + net.projection(h, y)


def conditional_input(net: nn.Module, z: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    """z, or [z, e(y)] when `net` is conditional (its `label` embedding); checks y against net.num_classes."""
    y = check_labels(net, y, len(z))
    return z if y is None else torch.cat([z, net.label(y).to(z.dtype)], dim=1)
