"""Calibrated synthetic labour market: population, outcome model, logs and online replay."""
