"""Plots of tracking results (matplotlib, Agg canvas; no pyplot, no global backend switch).

Each function builds its own ``Figure`` on a ``FigureCanvasAgg`` inside the call, so importing this
module imports nothing heavy and plotting never touches matplotlib's global state or a display.
The output format follows the file suffix (``.png``, ``.svg``, ``.pdf``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.viz.colours import rgb_for_id

__all__ = ["id_segments", "plot_bar_metrics", "plot_ids_over_time"]


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def id_segments(frames: np.ndarray, ids: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """Runs of consecutive frames per id: ``{id: [(first, last), ...]}``, ids by first frame.

    Args:
        frames: (N,) frame numbers.
        ids: (N,) ids (one row per id and frame; duplicates are ignored).
    """
    f = np.asarray(frames, dtype=np.int64).reshape(-1)
    i = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(f) != len(i):
        raise ValueError(f"frames ({len(f)}) and ids ({len(i)}) must have the same length")
    pairs = np.unique(np.stack([i, f], axis=1), axis=0) if len(f) else np.empty((0, 2), np.int64)
    out: dict[int, list[tuple[int, int]]] = {}
    for tid in np.unique(pairs[:, 0]):
        fr = pairs[pairs[:, 0] == tid, 1]
        cuts = np.flatnonzero(np.diff(fr) > 1)
        starts = np.concatenate([[0], cuts + 1])
        ends = np.concatenate([cuts, [len(fr) - 1]])
        out[int(tid)] = [(int(fr[a]), int(fr[b])) for a, b in zip(starts, ends, strict=True)]
    return dict(sorted(out.items(), key=lambda kv: (kv[1][0][0], kv[0])))


def _draw_segments(ax: Any, segments: dict[int, list[tuple[int, int]]], title: str) -> None:
    from matplotlib.collections import LineCollection

    lines, colours = [], []
    for row, (tid, runs) in enumerate(segments.items()):
        for a, b in runs:
            lines.append([(a - 0.5, row), (b + 0.5, row)])
            colours.append(rgb_for_id(tid))
    ax.add_collection(LineCollection(lines, colors=colours, linewidths=3))
    n = len(segments)
    ax.set_ylim(-1, max(n, 1))
    ax.invert_yaxis()
    step = max(1, int(np.ceil(n / 40)))
    ticks = list(range(0, n, step))
    ax.set_yticks(ticks)
    ax.set_yticklabels([str(list(segments)[k]) for k in ticks], fontsize=7)
    ax.set_xlabel("frame")
    ax.set_ylabel("id (by first frame)")
    ax.set_title(f"{title}: {n} ids")
    ax.grid(axis="x", alpha=0.3)


def plot_ids_over_time(frames: np.ndarray, ids: np.ndarray, path: str | Path, *,
                       gt_frames: np.ndarray | None = None, gt_ids: np.ndarray | None = None,
                       title: str = "tracks") -> Path:
    """Plot each id as horizontal segments over the frames it is reported, optionally beside gt.

    Gaps in an id's frames show as gaps in its line, so fragmentation and id switches are visible
    at a glance. Ids are ordered by first appearance; colours match :func:`colour_for_id`.

    Args:
        frames: (N,) frame numbers of the result rows.
        ids: (N,) track ids of the result rows.
        path: output image (``.png``, ``.svg`` or ``.pdf``; parent folders are created).
        gt_frames: (M,) frame numbers of ground-truth rows; a second panel when given.
        gt_ids: (M,) ground-truth ids (required with ``gt_frames``).
        title: title of the results panel.

    Returns:
        ``path``.
    """
    if (gt_frames is None) != (gt_ids is None):
        raise ValueError("give both gt_frames and gt_ids, or neither")
    panels = [(id_segments(frames, ids), title)]
    if gt_frames is not None:
        panels.append((id_segments(gt_frames, gt_ids), "ground truth"))  # type: ignore[arg-type]
    rows = max(len(p[0]) for p in panels)
    fig = _figure(6.0 * len(panels), min(20.0, 2.0 + 0.12 * rows))
    axes = fig.subplots(1, len(panels), sharex=True, squeeze=False)[0]
    last = [max((r[-1][1] for r in seg.values()), default=1) for seg, _ in panels]
    first = [min((r[0][0] for r in seg.values()), default=1) for seg, _ in panels]
    for ax, (seg, name) in zip(axes, panels, strict=True):
        _draw_segments(ax, seg, name)
    axes[0].set_xlim(min(first) - 1, max(last) + 1)
    fig.tight_layout()
    return _save(fig, path)


def plot_bar_metrics(metrics: Mapping[str, Mapping[str, float]], path: str | Path, *,
                     title: str = "", ylabel: str = "") -> Path:
    """Grouped bar chart: one group per metric, one bar per method, value printed on each bar.

    Args:
        metrics: ``{method: {metric: value}}``; a method lacking a metric gets no bar there.
        path: output image (``.png``, ``.svg`` or ``.pdf``).
        title: figure title.
        ylabel: y axis label.

    Returns:
        ``path``.
    """
    if not metrics:
        raise ValueError("metrics is empty")
    methods = list(metrics)
    names: list[str] = []
    for m in methods:
        names += [k for k in metrics[m] if k not in names]
    fig = _figure(max(5.0, 1.2 * len(names) * max(1, len(methods)) / 2 + 2), 4.0)
    ax = fig.subplots()
    width = 0.8 / len(methods)
    x = np.arange(len(names))
    for j, method in enumerate(methods):
        have = [k for k, n in enumerate(names) if n in metrics[method]]
        vals = [float(metrics[method][names[k]]) for k in have]
        bars = ax.bar(x[have] + (j - (len(methods) - 1) / 2) * width, vals, width, label=method)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
