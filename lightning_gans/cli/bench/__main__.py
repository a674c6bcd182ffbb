"""`python -m lightning_gans.cli.bench`: the same as the `lgans-bench` command."""
from . import main

raise SystemExit(main())
