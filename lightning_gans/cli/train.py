"""`lgans-train` / `python -m lightning_gans.cli.train`: train a GAN from the Hydra configs in conf/.

    lgans-train                                    # the default experiment (relativistic GAN, ring8, CPU)
    lgans-train loss=rsgan loss.pairing=all data=grid25
    lgans-train loss=designed loss.omega='0.5*log(r)' loss.rho='exp(-t)'
    lgans-train -m loss=sgan,nsgan,rsgan seed=0,1,2
    lgans-train hydra.run.dir=/tmp/my_run

Order of work: compose -> validate (nothing is built yet) -> build the data module, the GANModule
(this builds the loss: an unknown option or a design that fails its check raises here), callbacks
and loggers -> Trainer -> fit -> metrics.json and plots -> print where everything is.
Every configuration error is reported as one clear line before the Trainer starts, and the
process exits with status 2.
"""
from __future__ import annotations

import inspect
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from ..losses import LossConfigError
from ..training import GANModule, NonFiniteLossError
from ..metrics import MetricsCallback
from .overrides import OverrideError, check_overrides, quote_formulas, unknown_key_message

__all__ = ["main", "run", "build", "validate", "compose_config", "ConfigError", "CONF_DIR"]


def _conf_dir() -> Path:
    pkg = Path(__file__).resolve().parent.parent
    for cand in (pkg.parent / "conf", pkg / "conf"):  # repo checkout (editable) / packaged copy
        if (cand / "train.yaml").is_file():
            return cand
    raise FileNotFoundError(f"lightning_gans: cannot find conf/train.yaml next to {pkg}")


CONF_DIR = _conf_dir()


def player_steps(max_steps: int, n_critic: int, player: str) -> int:
    """Optimizer steps of one player in a run of `max_steps` (for step-based LR schedules, pitfall 3).

    GANModule makes one D step per batch and one G step every n_critic batches, and Lightning's
    max_steps counts both: G steps = max_steps / (n_critic + 1), D steps = the rest.
    """
    if player not in ("g", "d"):
        raise ConfigError(f"player_steps: player must be 'g' or 'd', got {player!r}")
    if int(max_steps) <= 0:  # e.g. -1 (run by max_epochs): a schedule over the run has no length
        raise ConfigError(f"the LR schedules run over trainer.max_steps, which is {max_steps}; set a positive "
                          "trainer.max_steps or model.g_scheduler=null model.d_scheduler=null")
    g = max(1, int(max_steps) // (int(n_critic) + 1))
    return g if player == "g" else max(1, int(max_steps) - g)


# Used in conf/model/*.yaml: total_iters: ${lgans.player_steps:${trainer.max_steps},${model.n_critic},g}
if not OmegaConf.has_resolver("lgans.player_steps"):
    OmegaConf.register_new_resolver("lgans.player_steps", player_steps)
# ... and D's input width under packing: in_dim: ${lgans.mul:${model.generator.out_dim},${model.pack}}
if not OmegaConf.has_resolver("lgans.mul"):
    OmegaConf.register_new_resolver("lgans.mul", lambda a, b: int(a) * int(b))


def gan_module_defaults() -> dict:
    """GANModule's keyword defaults, from its signature: the `model/gan_module` node every model config
    starts from, so configs state only what differs and `model.<arg>=...` overrides any argument."""
    skip = {"self", "generator", "discriminator", "loss", "loss_params"}
    return {k: p.default for k, p in inspect.signature(GANModule.__init__).parameters.items()
            if k not in skip and (p.default is None or isinstance(p.default, (bool, int, float, str)))}


ConfigStore.instance().store(group="model", name="gan_module", node=gan_module_defaults())


class ConfigError(ValueError):
    """A configuration value is invalid; raised before training starts."""


# ---------------------------------------------------------------------------------------- validation
def validate(cfg: DictConfig) -> None:
    """Cheap checks on the composed config, before anything is built."""
    for key in ("model.g_optimizer", "model.d_optimizer"):
        opt = OmegaConf.select(cfg, key)
        if opt is not None and "lr" in opt:
            lr = opt.lr
            if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
                raise ConfigError(f"{key}.lr must be a positive number, got {lr!r}")
    steps = OmegaConf.select(cfg, "trainer.max_steps")
    if steps is not None and steps != -1 and steps <= 0:
        raise ConfigError(f"trainer.max_steps must be positive (or -1 with max_epochs), got {steps}")
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
    if missing:  # `???` in a config: a value only the user can give (e.g. data.root for local datasets)
        raise ConfigError(f"missing required value(s): {', '.join(missing)}; give them on the command line, "
                          f"e.g. {missing[0]}=...")
    threads = cfg.get("torch_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"torch_threads must be null (torch's default: every core) or an integer >= 1, got {threads!r}")
    if "name" not in cfg.get("loss", {}):
        raise ConfigError("loss.name is missing: pick a loss with loss=<name> (see conf/loss/)")


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The config `lgans-train <overrides>` would run, composed without Hydra's runtime (for scripts and tests).

    `paths.output_dir` refers to Hydra's run directory, which only exists under `hydra.main`:
    give `paths.output_dir=...` among the overrides before running it.
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR), job_name="lgans-train"):
        return compose("train", overrides=quote_formulas(list(overrides or [])))


# ---------------------------------------------------------------------------------------- building
def build(cfg: DictConfig) -> dict:
    """Instantiate everything a run needs: datamodule, model, callbacks, loggers, trainer (not fitted)."""
    from hydra.utils import instantiate

    validate(cfg)

    def make(key: str, node, **kwargs):
        # Unwrap Hydra's InstantiationException: its cause is the user-facing message, and it names the argument.
        try:
            return instantiate(node, **kwargs)
        except hydra.errors.InstantiationException as e:
            cause = e.__cause__ or e
            if isinstance(cause, LossConfigError):  # built inside the model, but the loss group is at fault
                raise ConfigError(str(cause)) from cause
            raise ConfigError(f"{key}: {type(cause).__name__}: {cause}") from cause

    datamodule, model = make("data", cfg.data), make("model", cfg.model)
    _check_shapes(cfg, datamodule, model)
    callbacks = [make(f"callbacks.{k}", c) for k, c in (cfg.get("callbacks") or {}).items() if c is not None]
    # Lightning rejects a progress-bar (checkpoint) callback with the bar (checkpointing) disabled;
    # the trainer flag is what the user asked for, so it wins over the callbacks group.
    from lightning.pytorch.callbacks import Checkpoint, ProgressBar

    for flag, kind in (("enable_progress_bar", ProgressBar), ("enable_checkpointing", Checkpoint)):
        if OmegaConf.select(cfg, f"trainer.{flag}") is False:
            callbacks = [c for c in callbacks if not isinstance(c, kind)]
    loggers = [make(f"logger.{k}", c) for k, c in (cfg.get("logger") or {}).items() if c is not None]
    trainer = make("trainer", cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return {"datamodule": datamodule, "model": model, "callbacks": callbacks, "loggers": loggers, "trainer": trainer}


def _check_shapes(cfg: DictConfig, datamodule, model) -> None:
    """The generator must produce what the data module serves (an MLP pair cannot learn images)."""
    dims = getattr(datamodule, "dims", None)
    if dims is None:
        return
    shape = tuple(model.sample(n=2).shape[1:])
    if shape != tuple(dims):
        g = OmegaConf.select(cfg, "model.generator._target_", default="?").rsplit(".", 1)[-1]
        hint = "model=dcgan for images" if len(dims) == 3 else "model=mlp for 2-D data"
        raise ConfigError(f"the generator ({g}) makes samples of shape {shape} but the data serve {tuple(dims)}; "
                          f"use {hint}")


def _metrics_callback(callbacks):
    return next((c for c in callbacks if isinstance(c, MetricsCallback)), None)


class _NoTips(logging.Filter):
    """Drops Lightning's advertising tips (e.g. "💡 Tip: ... try installing litlogger") from a run's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def _one_log_stream() -> None:
    """Lightning's own console handler plus Hydra's root handler print every line twice: keep Hydra's
    (console and the run's train.log) and drop Lightning's; and leave out its tips."""
    if logging.getLogger().handlers:  # only under hydra.main (or another configured root logger)
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            lg = logging.getLogger(name)
            for h in list(lg.handlers):
                lg.removeHandler(h)
            lg.propagate = True
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoTips) for f in tips.filters):
        tips.addFilter(_NoTips())


def run(cfg: DictConfig) -> dict:
    """Train one configuration; return its final metrics (what metrics.json holds)."""
    import lightning.pytorch as pl

    _one_log_stream()

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        parts = build(cfg)
    except (ConfigError, ValueError, TypeError, FileNotFoundError, KeyError) as e:
        msg = str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"
        print(f"lgans-train: invalid configuration: {msg}", file=sys.stderr)
        raise SystemExit(2) from e
    if cfg.get("torch_threads") is not None:  # checked by build(); set before training
        import torch

        torch.set_num_threads(cfg.torch_threads)
    metrics_cb = _metrics_callback(parts["callbacks"])
    if metrics_cb is not None:
        metrics_cb.extra["config"] = OmegaConf.to_container(cfg, resolve=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    t0 = time.time()
    failure = None
    with warnings.catch_warnings():
        # Lightning's own use of a torch API that torch deprecated (lightning/pytorch/utilities/_pytree.py):
        # nothing a user of this command can act on. Scoped to this fit, not the process.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
        # ModelCheckpoint warns that a manually optimised module's step checkpoints hold the state after the
        # optimizer step; for GANModule that is the intended state (its counters and RNG streams match it, and
        # resuming from it is exact: tests/test_resume.py).
        warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps")
        try:
            parts["trainer"].fit(parts["model"], datamodule=parts["datamodule"])
        except NonFiniteLossError as e:
            failure = e
    elapsed = time.time() - t0
    metrics = json.loads((out_dir / "metrics.json").read_text()) if (out_dir / "metrics.json").is_file() else {}
    _report(out_dir, metrics, elapsed, parts)
    if failure is not None:
        print(f"lgans-train: training failed: {failure}", file=sys.stderr)
        raise SystemExit(1) from failure
    return metrics


def _report(out_dir: Path, metrics: dict, elapsed: float, parts: dict) -> None:
    keys = ("modes_covered", "high_quality_fraction", "reverse_kl", "frechet_distance", "kid", "precision", "recall",
            "classes_covered", "class_accuracy")
    shown = ", ".join(f"{k}={metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
                      for k in keys if k in metrics)
    model = parts["model"]
    lines = [f"lgans-train: finished in {elapsed:.0f} s ({model.g_steps} G steps, {model.d_steps} D steps, "
             f"{model.skipped_steps} skipped for non-finite losses); outputs in {out_dir}"]
    if shown:
        lines.append(f"  metrics      {out_dir / 'metrics.json'}  ({shown})")
    for name in ("samples.png", "samples.gif"):
        if (out_dir / name).is_file():
            lines.append(f"  samples      {out_dir / name}")
    ckpt = out_dir / "checkpoints"
    if ckpt.is_dir():
        lines.append(f"  checkpoints  {ckpt}")
    for lg in parts["loggers"]:
        lines.append(f"  {type(lg).__name__:<12} {lg.log_dir}")
    lines.append(f"  config       {out_dir / 'config.yaml'}")
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------------------- entry points
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    metrics = run(cfg)
    for key in ("high_quality_fraction", "frechet_distance"):
        if key in metrics:
            return metrics[key]
    return None


def _check_args(args: list[str]) -> None:
    """One line and exit status 2 for an override naming an unknown group, option or key."""
    try:
        check_overrides(args, CONF_DIR)
        if not any(a in ("-m", "--multirun") or a.startswith("-") for a in args):
            compose_config([a for a in args if not a.startswith("hydra")])  # keys inside groups (model.nope=1)
    except OverrideError as e:
        print(f"lgans-train: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    except hydra.errors.HydraException as e:
        def keys(parent):
            cfg = compose_config([])
            node = OmegaConf.select(cfg, parent) if parent else cfg
            return set(node) if node is not None and hasattr(node, "keys") else set()

        msg = unknown_key_message(e, keys) or str(e).splitlines()[0]
        print(f"lgans-train: {msg}", file=sys.stderr)
        raise SystemExit(2) from e


def main() -> None:
    args = quote_formulas(sys.argv[1:])
    _check_args(args)
    sys.argv = [sys.argv[0]] + args
    _hydra_main()


if __name__ == "__main__":
    main()
