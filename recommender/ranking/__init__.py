"""Ranking the catalogue for one cadre: suggestions with reasons, an intent, and an ordered learning path."""
