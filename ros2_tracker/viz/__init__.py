"""Visualisation: annotated frames (``draw``), video files (``video``) and plots (``plots``).

Names are imported lazily on first use, so ``import ros2_tracker.viz`` pulls in neither OpenCV nor
matplotlib; ``draw`` and ``video`` need OpenCV, ``plots`` needs matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FrameTracks",
    "VideoWriter",
    "colour_for_id",
    "draw_detections",
    "draw_tracks",
    "id_segments",
    "plot_bar_metrics",
    "plot_ids_over_time",
    "rgb_for_id",
]

_HOME = {
    "FrameTracks": "sequence",
    "write_tracking_video": "sequence",
    "VideoWriter": "video",
    "colour_for_id": "colours",
    "rgb_for_id": "colours",
    "draw_detections": "draw",
    "draw_tracks": "draw",
    "id_segments": "plots",
    "plot_bar_metrics": "plots",
    "plot_ids_over_time": "plots",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
