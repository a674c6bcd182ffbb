"""Command-line overrides of `lgans-train`, checked before Hydra sees them.

Hydra answers a typo with several lines of its own text (and for `los=rsgan` suggests `+los=rsgan`,
the wrong fix). `check_overrides` answers in one line: the unknown group, option or key, and the
closest valid names. `quote_formulas` re-quotes formula values the shell unquoted.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import OmegaConf

__all__ = ["OverrideError", "check_overrides", "quote_formulas", "suggest"]

_FORMULA_KEY = re.compile(r"^(\+{0,2}loss\.(?:omega|rho|alpha|beta|h))=(.+)$")
_PLAIN = re.compile(r"^([A-Za-z_][\w.]*)=(.*)$")


class OverrideError(ValueError):
    """An override names a group, option or key that does not exist."""


def suggest(word: str, choices, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.5)
    if close:
        return f"; did you mean {' or '.join(prefix + c for c in close)}?"
    return f"; valid: {', '.join(sorted(choices))}"


def quote_formulas(args: list[str]) -> list[str]:
    """Quote formula values so Hydra's override grammar accepts them.

    The shell eats the quotes of `loss.omega='0.5*log(r)'`, and Hydra rejects the bare parentheses;
    formula keys (loss.omega, .rho, .alpha, .beta, .h) are re-quoted unless already quoted.
    """
    out = []
    for a in args:
        m = _FORMULA_KEY.match(a)
        if m and not (m.group(2)[0] in "'\"" and m.group(2)[-1] == m.group(2)[0]) and m.group(2) != "null":
            a = f"{m.group(1)}='" + m.group(2).replace("\\", "\\\\").replace("'", "\\'") + "'"
        out.append(a)
    return out


def check_overrides(args: list[str], conf_dir: Path) -> None:
    """Raise OverrideError for an override of an unknown group, group option or top-level key.

    Group options: `loss=nope`; top-level names: `los=rsgan`; the first part of a dotted key:
    `modle.n_critic=3`. Keys inside a group (`model.nope=1`) are checked after composing, by
    `unknown_key_message`. Appends (`+x=`), deletions (`~x`), `hydra.*` and flags pass through.
    """
    groups = {p.name: {q.stem for q in p.glob("*.yaml")} for p in conf_dir.iterdir() if p.is_dir()}
    top = set(OmegaConf.load(conf_dir / "train.yaml")) - {"defaults"}
    for a in args:
        m = _PLAIN.match(a)
        if a.startswith(("-", "+", "~")) or not m or m.group(1).startswith("hydra"):
            continue
        key, value = m.groups()
        head = key.split(".")[0]
        if key in groups:
            for option in value.split(","):  # a multirun sweep lists several
                if option not in groups[key] and option != "null":
                    raise OverrideError(f"unknown {key} option {option!r}{suggest(option, groups[key])}")
        elif head not in groups and head not in top:
            raise OverrideError(f"unknown config key {head!r} in {a!r}{suggest(head, set(groups) | top)}")


def unknown_key_message(error: Exception, cfg_keys) -> str | None:
    """One line for Hydra's "Could not override 'model.nope'" composition error, or None for other errors."""
    m = re.search(r"Could not override '([\w.]+)'", str(error)) or re.search(r"Key '(\w+)' is not in struct", str(error))
    if not m:
        return None
    key = m.group(1)
    parent, _, leaf = key.rpartition(".")
    return f"unknown config key {key!r}{suggest(leaf, cfg_keys(parent), parent + '.' if parent else '')}"
