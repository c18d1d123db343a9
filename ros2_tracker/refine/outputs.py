"""Files of an offline run: refined MOTChallenge results plus the marker that says they are offline.

The refined results stay a plain, valid MOTChallenge file (``frame,id,x,y,w,h,conf,-1,-1,-1``), so
every MOT tool reads them. What marks them as offline is a JSON *marker* beside them,
``<results>.offline.json``: ``{"offline": true, "online_results": ..., "refine_config": {...},
"summary": {...}, "links": [...]}``. The online results are a separate file that refinement never
writes to: ``ros2-tracker track --offline --output RES.txt`` writes the online rows to
``RES.online.txt`` and the refined ones to ``RES.txt``; ``replay --offline`` keeps
``results/<name>.txt`` (online) and adds ``results/<name>.offline.txt``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ros2_tracker.io.files import write_text
from ros2_tracker.io.mot import write_results
from ros2_tracker.refine import RefineConfig, RefinedTracks, refine_tracks

__all__ = ["fps_from_stamps", "marker_path", "offline_results_path", "online_results_path",
           "refine_and_write", "score_online_offline"]


def online_results_path(output: str | Path) -> Path:
    """Where ``track --offline --output RES.txt`` puts the online results: ``RES.online.txt``."""
    p = Path(output)
    return p.with_name(f"{p.stem}.online{p.suffix or '.txt'}")


def offline_results_path(online: str | Path) -> Path:
    """Refined results beside an online results file: ``NAME.txt`` -> ``NAME.offline.txt``."""
    p = Path(online)
    return p.with_name(f"{p.stem}.offline{p.suffix or '.txt'}")


def marker_path(results: str | Path) -> Path:
    """The offline marker of a refined results file: ``RES.txt`` -> ``RES.txt.offline.json``."""
    p = Path(results)
    return p.with_name(p.name + ".offline.json")


def refine_and_write(frames: np.ndarray, ids: np.ndarray, boxes_tlwh: np.ndarray, scores: np.ndarray, *,
                     output: str | Path, online_path: str | Path, fps: float, config: RefineConfig,
                     embeddings: np.ndarray | None = None,
                     classes: np.ndarray | None = None,
                     world: np.ndarray | None = None) -> tuple[RefinedTracks, Path]:
    """Refine online result rows, write the refined results to ``output`` and its marker beside it.

    Args:
        frames: (N,) frame numbers of the online result rows (see :func:`refine_tracks`).
        ids: (N,) their identities.
        boxes_tlwh: (N, 4) their boxes [px].
        scores: (N,) their scores.
        output: refined results file to write (never the same as ``online_path``).
        online_path: the online results file, named in the marker (not written here).
        fps: frame rate [Hz] of the frame numbers.
        config: refinement parameters.
        embeddings: (N, D) appearance per row, or None.
        classes: (N,) class id per row, or None (one class): tracklets of two classes are never linked.
        world: (N, 3) 3D position [m] per row (NaN: none), or None: written to the world columns.

    Returns:
        The refined tracks and the marker's path.

    Raises:
        ValueError: ``output`` is the online file, or bad rows (see :func:`refine_tracks`).
    """
    output = Path(output)
    if output.resolve() == Path(online_path).resolve():
        raise ValueError(f"the refined results would overwrite the online results {online_path}")
    t0 = time.perf_counter()
    refined = refine_tracks(frames, ids, boxes_tlwh, scores, fps=fps, config=config, embeddings=embeddings,
                            classes=classes, world=world)
    seconds = time.perf_counter() - t0
    write_results(output, refined.frames, refined.ids, refined.boxes_tlwh, refined.scores,
                  world=refined.world)
    marker = marker_path(output)
    write_text(marker, json.dumps({
        "offline": True,
        "results": output.name,
        "online_results": str(online_path),
        "fps": fps,
        "appearance": embeddings is not None,
        "refine_seconds": seconds,
        "refine_config": config.to_dict(),
        "summary": refined.summary(),
        "links": [{"earlier_id": k.earlier_id, "later_id": k.later_id, "gap_s": round(k.gap_s, 4),
                   "cost": round(k.cost, 4)} for k in refined.links],
    }, indent=1) + "\n")
    return refined, marker


def fps_from_stamps(stamps_ns: list[int] | np.ndarray, default: float = 30.0) -> float:
    """Frame rate [Hz] from message stamps [ns]: 1 / the median step between distinct stamps."""
    steps = np.diff(np.unique(np.asarray(stamps_ns, dtype=np.int64)))
    steps = steps[steps > 0]
    return 1e9 / float(np.median(steps)) if len(steps) else default


def score_online_offline(gt_path: str | Path, online: str | Path, offline: str | Path, *, name: str,
                         num_frames: int | None = None, json_path: str | Path | None = None) -> list:
    """TrackEval metrics of the online and the refined results of one sequence, side by side.

    Returns:
        ``[("<name> online", Metrics), ("<name> offline", Metrics)]``; also written to ``json_path``.
    """
    from ros2_tracker.eval.metrics import evaluate_sequence, write_json

    rows = [(f"{name} {kind}", evaluate_sequence(gt_path, path, name=name, num_frames=num_frames))
            for kind, path in (("online", online), ("offline", offline))]
    if json_path is not None:
        write_json(json_path, rows)
    return rows
