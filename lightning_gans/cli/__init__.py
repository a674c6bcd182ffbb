"""The command lines: `lgans-train` (train.py, Hydra), `lgans-design` (design.py), `lgans-bench` (bench/).

The top layer: may import every other layer; nothing imports it.
"""
