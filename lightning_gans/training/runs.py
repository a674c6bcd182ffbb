"""Load a trained generator from a lightning-gans run: a checkpoint, or the run directory holding one.

A run written by `lgans-train` is a directory with `config.yaml` (the resolved Hydra config) and
`checkpoints/*.ckpt`. The generator is rebuilt from the config's `model.generator` node with
`hydra.utils.instantiate` (so any net a config can name is supported, with no hand work), and its
weights come from the checkpoint, loaded with `weights_only=True` (GANModule keeps its hyper-
parameters plain for this). Python-only runs have no config.yaml: pass the net to fill instead.

This module reads files only; it never imports the CLI layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

__all__ = ["LoadedRun", "load_run", "resolve_run", "RunLoadError"]

EMA_PREFIX, G_PREFIX = "g_ema.module.", "generator."


class RunLoadError(ValueError):
    """The path is not a lightning-gans run or checkpoint (the message says what was expected)."""


@dataclass
class LoadedRun:
    generator: nn.Module            # eval mode, on `device`
    hparams: dict                   # GANModule's hyper-parameters (latent_dim, latent_sampler, num_classes, ...)
    checkpoint: Path
    config: Optional[dict] = None   # the run's config.yaml, when there is one
    ema: bool = False               # whether `generator` holds the EMA weights
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> Optional[int]:
        return self.hparams.get("num_classes")

    @property
    def class_frequencies(self) -> Optional[list]:
        """The label frequencies G drew from (label_sampler="data"), as the checkpoint saved them; else None."""
        return self.extra.get("class_frequencies")

    @property
    def latent_shape(self) -> tuple:
        d = self.hparams["latent_dim"]
        return (d,) if isinstance(d, int) else tuple(d)


def resolve_run(path: Union[str, Path]) -> tuple[Path, Path]:
    """(checkpoint, run directory) of a .ckpt file or a run directory (its checkpoints/last.ckpt, else the newest)."""
    p = Path(path).expanduser()
    if p.is_dir():
        folder = p / "checkpoints" if (p / "checkpoints").is_dir() else p
        ckpts = sorted(folder.glob("*.ckpt"), key=lambda f: (f.name == "last.ckpt", f.stat().st_mtime))
        if not ckpts:
            raise RunLoadError(f"{path}: no checkpoint found; expected a lightning-gans run directory with "
                               "checkpoints/*.ckpt, or a .ckpt file")
        ckpt = ckpts[-1]
    elif p.is_file():
        ckpt = p
    else:
        raise RunLoadError(f"{path}: no such file or directory; expected a .ckpt file or a lightning-gans run "
                           "directory")
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return ckpt, run_dir


def _read_checkpoint(ckpt: Path, map_location) -> dict:
    expected = "expected a checkpoint written by lightning-gans (GANModule) training"
    try:
        state = torch.load(ckpt, map_location=map_location, weights_only=True)
    except Exception as e:  # not a torch file, or objects weights_only refuses: not one of ours either way
        raise RunLoadError(f"{ckpt}: not a lightning-gans run checkpoint ({type(e).__name__}); {expected}") from None
    if not isinstance(state, dict) or "gan_module" not in state or "state_dict" not in state:
        raise RunLoadError(f"{ckpt}: not a lightning-gans run checkpoint (no GANModule state); {expected}")
    return state


def load_run(path: Union[str, Path], ema: bool = True, generator: Optional[nn.Module] = None,
             map_location: Union[str, torch.device] = "cpu") -> LoadedRun:
    """The run's generator (EMA weights when `ema` and the run kept an EMA), in eval mode, with its hyper-parameters.

    `generator`: a net to load the weights into instead of building one from the run's config.yaml.
    """
    ckpt, run_dir = resolve_run(path)
    state = _read_checkpoint(ckpt, map_location)
    config = None
    if generator is None:
        cfg_path = run_dir / "config.yaml"
        if not cfg_path.is_file():
            raise RunLoadError(f"{ckpt}: no config.yaml in the run directory {run_dir} to rebuild the generator from; "
                               "pass generator=<a net of the run's architecture>")
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(cfg_path)
        node = OmegaConf.select(cfg, "model.generator")
        if node is None:
            raise RunLoadError(f"{cfg_path}: no model.generator node; expected the config lgans-train writes")
        generator = instantiate(node)
        config = OmegaConf.to_container(cfg, resolve=True)
    weights = state["state_dict"]
    use_ema = ema and any(k.startswith(EMA_PREFIX) for k in weights)
    prefix = EMA_PREFIX if use_ema else G_PREFIX
    sub = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    if not sub:
        raise RunLoadError(f"{ckpt}: the checkpoint holds no generator weights ({prefix}*)")
    try:
        generator.load_state_dict(sub)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunLoadError(f"{ckpt}: the generator does not match the checkpoint's weights ({first})") from None
    generator.requires_grad_(False)
    extra = {k: state["gan_module"][k] for k in ("class_frequencies",) if k in state["gan_module"]}
    return LoadedRun(generator.eval(), dict(state.get("hyper_parameters") or {}), ckpt, config, use_ema, extra)
