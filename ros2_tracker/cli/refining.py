"""``--offline`` of the commands that read a recorded run back (``replay``, ``results``): the recorded
tracks refined as a batch (``ros2_tracker.refine``) into a file beside the online results, and, with
ground truth, both scored side by side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.cli.errors import metrics_unavailable

__all__ = ["add_offline_options", "load_refine_config", "refine_recorded"]


def add_offline_options(p: argparse.ArgumentParser) -> None:
    """``--offline`` and ``--refine-config``, as the commands that read a recorded run back take them."""
    p.add_argument("--offline", action="store_true", help="also refine the recorded tracks as a batch "
                   "(interpolate gaps; link tracklets only with link_without_appearance: true in "
                   "--refine-config: a bag holds no appearance) into <results>.offline.txt, and report "
                   "online and offline metrics")
    p.add_argument("--refine-config", type=Path, metavar="F",
                   help="refinement parameters for --offline (config/refine.yaml form)")


def load_refine_config(path: Path | None) -> Any:
    """The RefineConfig of ``--refine-config`` (defaults without one); ConfigError when invalid."""
    from ros2_tracker.io.params import load_config
    from ros2_tracker.refine import RefineConfig

    return load_config(RefineConfig, path)


def refine_recorded(frames: np.ndarray, ids: np.ndarray, boxes_tlwh: np.ndarray, scores: np.ndarray, *,
                    results: Path, fps: float, config: Any, classes: np.ndarray | None = None,
                    world: np.ndarray | None = None, gt: Path | None = None, name: str = "",
                    num_frames: int | None = None, json_path: Path | None = None) -> list[tuple[str, Path]]:
    """Refine the online result rows written to ``results`` into ``<results>.offline.txt`` (and its marker),
    say what was linked and interpolated, and with ``gt`` score online and offline into ``json_path``.
    Returns the ``(what, path)`` of each file written."""
    from ros2_tracker.refine.outputs import offline_results_path, refine_and_write, score_online_offline

    path = offline_results_path(results)
    refined, marker = refine_and_write(frames, ids, boxes_tlwh, scores, output=path, online_path=results,
                                       config=config, classes=classes, world=world, fps=fps)
    summary = refined.summary()
    if config.link and not config.link_without_appearance:  # a bag holds no appearance embeddings
        print("note: a recorded run has no appearance, so --offline links no tracklets "
              "(link_without_appearance is off; --refine-config can turn it on); gaps are interpolated",
              file=sys.stderr)
    print(f"offline: {summary['links']} links, {summary['interpolated_rows']} interpolated boxes")
    written = [("offline", path), ("marker", marker)]
    why = metrics_unavailable() if gt is not None else None
    if why is not None:
        print(f"note: {why}", file=sys.stderr)
    elif gt is not None:  # scoring needs trackeval (pip-only), refining does not
        from ros2_tracker.eval.metrics import format_table

        print(format_table(score_online_offline(gt, results, path, name=name, num_frames=num_frames,
                                                json_path=json_path)))
        if json_path is not None:
            written.append(("metrics (online vs offline)", json_path))
    return written
