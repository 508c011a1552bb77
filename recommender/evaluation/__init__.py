"""Offline evaluation of the recommender: metrics as pure functions and the evaluation protocols."""
