"""Years between dates, one way for the whole recommender.

Freshness, decay, format windows and the 领导班子 rule all speak in years while records and courses carry
dates; one length of a year (the Julian 365.25 days) and one set of helpers keep every part agreeing on how
old a course or record is.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["DAYS_PER_YEAR", "add_years", "years_between"]

#: Days in a year, on average over leap years.
DAYS_PER_YEAR = 365.25


def years_between(since: dt.date | None, as_of: dt.date) -> float | None:
    """Years from ``since`` to ``as_of`` (0 when ``since`` is later), or None when ``since`` is unknown.

    >>> years_between(dt.date(2020, 1, 1), dt.date(2024, 1, 1))
    4.0
    """
    return None if since is None else max(0.0, (as_of - since).days / DAYS_PER_YEAR)


def add_years(day: dt.date, years: float) -> dt.date:
    """``day`` moved by ``years`` (negative: back): whole years by the calendar, the fraction in days.

    >>> add_years(dt.date(2024, 2, 29), -1)
    datetime.date(2023, 2, 28)
    """
    whole = int(years)
    try:
        moved = day.replace(year=day.year + whole)
    except ValueError:  # 29 February
        moved = day.replace(year=day.year + whole, day=28)
    return moved + dt.timedelta(days=round((years - whole) * DAYS_PER_YEAR))
