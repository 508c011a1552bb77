"""``python -m recommender``: one command group for the recommender and the search engine.

Each part registers its own commands below; command bodies import their heavy modules lazily so that
``--help`` stays fast.
"""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group()
def main() -> None:
    """干训推荐与检索：学习推荐、批量推荐、离线评估与语义检索。"""


# ── recommendations: gaps, hours, suggestions, batch, evaluation (recommender/ranking/cli.py) ──
from recommender.ranking.cli import COMMANDS as _REC_COMMANDS  # noqa: E402

for _command in _REC_COMMANDS:
    main.add_command(_command)


# ── analytics: indicators, coverage, class programmes, nominations (recommender/analytics/cli.py) ──
from recommender.analytics.cli import COMMANDS as _ANALYTICS_COMMANDS  # noqa: E402

for _command in _ANALYTICS_COMMANDS:
    main.add_command(_command)


# ── search: index, search, similar, tag-check, duplicates (recommender/search/cli.py) ──
from recommender.search.cli import COMMANDS as _SEARCH_COMMANDS  # noqa: E402

for _command in _SEARCH_COMMANDS:
    main.add_command(_command)
