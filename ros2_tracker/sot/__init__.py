"""Single-target tracking: follow one chosen object (see tracker_base.py)."""
