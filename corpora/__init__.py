"""Corpora: the bundled sample catalogue (``sample/``, written by hand) and generators of cadres and records."""
