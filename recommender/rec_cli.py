"""Command-line entry points of the recommender, registered on ``python -m recommender`` by ``cli.py``."""

from __future__ import annotations

import click

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []
