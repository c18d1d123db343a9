"""Stable id -> colour mapping shared by images (BGR, OpenCV) and plots (RGB, matplotlib)."""

from __future__ import annotations

import colorsys

__all__ = ["colour_for_id", "rgb_for_id"]

_GOLDEN = 0.618033988749895


def rgb_for_id(track_id: int) -> tuple[float, float, float]:
    """A stable, well-spread RGB colour in [0, 1] for an integer id (hue steps by the golden ratio).

    The colour depends on the id alone (no hashing salt), so it is the same in every run and process.
    """
    i = int(track_id)
    hue = (i * _GOLDEN) % 1.0
    sat = (0.95, 0.75, 0.6)[i % 3]
    val = (1.0, 0.85)[(i // 3) % 2]
    return colorsys.hsv_to_rgb(hue, sat, val)


def colour_for_id(track_id: int) -> tuple[int, int, int]:
    """:func:`rgb_for_id` as an OpenCV (b, g, r) tuple of ints in 0..255."""
    r, g, b = rgb_for_id(track_id)
    return round(255 * b), round(255 * g), round(255 * r)
