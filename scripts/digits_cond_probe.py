"""Issue 10's diagnosis: does a (conditional) digits generator spread each class's samples like the real digits?

    python scripts/digits_cond_probe.py experiment=digits_cond budget_steps=2000
    python scripts/digits_cond_probe.py experiment=digits_cond budget_steps=2000 model.generator.conditioning=concat
    python scripts/digits_cond_probe.py experiment=digits_cond budget_steps=2000 model.num_classes=null   # unconditional
    python scripts/digits_cond_probe.py --old-projection-init experiment=digits_cond ...   # nn.Embedding's N(0, 1)

Trains like `lgans-train <overrides>` (no metrics, logs or checkpoints; one torch thread) and every `--every`
optimizer steps prints one JSON line about the raw (non-EMA) generator, 1,000 samples in eval mode, labels
0..9 in turn: `spread`, the mean pairwise L2 distance between samples of one class averaged over classes
(the class they were generated for; unconditional: the digits classifier's prediction), against
`spread_real` of the training split; `class_accuracy`; and, for a projection D on 512 training digits, the
standard deviations of its two terms, `psi_std` (ψ(φ(x))) and `proj_std` (<e(y), φ(x)>).
"""
from __future__ import annotations

import json
import sys

import torch


def spread(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.stack([torch.cdist(x[y == c].flatten(1), x[y == c].flatten(1)).mean()
                              for c in torch.unique(y)]).mean())


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    import lightning.pytorch as pl

    from lightning_gans.cli.train import build, compose_config
    from lightning_gans.data import digits_split
    from lightning_gans.metrics import class_accuracy, load_digits_classifier

    old_init = "--old-projection-init" in argv
    every = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--every=")), 1000)
    overrides = [a for a in argv if not a.startswith("--")]
    cfg = compose_config([*overrides, "logger=none", "~callbacks.checkpoint", "~callbacks.samples", "~callbacks.metrics",
                          "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false",
                          "paths.output_dir=/tmp/lgans-digits-cond-probe"])
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    x_real, y_real, _, _ = digits_split()
    classifier = load_digits_classifier()

    class Probe(pl.Callback):
        def on_train_batch_end(self, trainer, m, outputs, batch, batch_idx):
            step = trainer.global_step
            if step % every:
                return
            y = torch.arange(1000) % 10
            x = m.sample(n=1000, labels=y if m.num_classes else None, ema=False).float()
            row = {"step": step}
            with torch.no_grad():
                if m.num_classes:
                    row["class_accuracy"] = round(class_accuracy(x, y), 3)
                else:
                    y = classifier(x.clamp(-1, 1)).argmax(1)
                row.update(spread=round(spread(x, y), 3), spread_real=round(spread(x_real, y_real), 3))
                d = m.discriminator
                if hasattr(d, "projection"):
                    h = d.convs(x_real[:512]).flatten(1)
                    row.update(psi_std=round(float(d.fc(h).std()), 3),
                               proj_std=round(float(d.projection(h, y_real[:512]).std()), 3))
            print(json.dumps(row), flush=True)

    parts = build(cfg)
    if old_init:
        with torch.no_grad():
            parts["model"].discriminator.projection.embed.weight.normal_(0, 1)
    parts["trainer"].callbacks.append(Probe())
    parts["trainer"].fit(parts["model"], datamodule=parts["datamodule"])


if __name__ == "__main__":
    main(sys.argv[1:])
