"""Tracktor: a two-stage detector's RoI heads as the tracker (see regressor.py)."""
