"""Samples of the motion model: trajectories from ground truth and from the synthetic scene.

A sequence is named either by a MOTChallenge folder (relative to a data root: ``gt/gt.txt`` and
``seqinfo.ini``; MOT17-style files keep pedestrians, class 1, with the consider flag set) or as
``synthetic:<seed>@<fps>`` (the built-in scene of :mod:`ros2_tracker.synthetic`, 20 s, people
visible less than 30 % count as unmeasured, as a detector would miss them; the seed also draws how
often people stop and how much their heading wanders, so scenes differ in how straight people walk).

A sample is one track at one "now" frame, in the form the tracker keeps (:class:`SampleSet`): the raw
per-frame history of the last ``history_frames`` frames (boxes, valid mask, stamps relative to now)
and the true future centres at the model's times ahead (with a mask where the trajectory has ended).
Histories are degraded as a tracker sees them: box jitter relative to the box height, random
detector misses, and (``lost_fraction`` of the samples) an occlusion that hides the last frames
before now, so the model learns to predict through occlusions. Everything is deterministic in the
seed. numpy only (no torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ros2_tracker.core.kalman import MotionNoise
from ros2_tracker.core.motion import filter_history
from ros2_tracker.motion.features import EncodedHistory, encode_history, resample_history

__all__ = ["SampleSet", "SampleSpec", "Track", "encode_samples", "load_tracks", "make_samples"]

_MIN_VISIBILITY = 0.3


class Track(NamedTuple):
    """One identity: (T,) frame numbers and (T, 4) boxes (cx, cy, w, h) [px], (T,) bool measured."""

    frames: np.ndarray
    boxes_cxcywh: np.ndarray
    measured: np.ndarray


class SampleSet(NamedTuple):
    """Samples of one sequence (all share the frame rate, hence the column stamps).

    Attributes:
        name: sequence name.
        boxes_cxcywh: (N, K, 4) history boxes [px] (degraded as described in the module docstring).
        valid: (N, K) bool.
        stamps: (K,) column stamps relative to now [s] (the last is 0).
        future: (N, T, 2) true centres at the model's times ahead [px].
        future_ok: (N, T) bool, False past the end of the trajectory.
        true_height: (N,) true box height at now [px] (for errors relative to height).
    """

    name: str
    boxes_cxcywh: np.ndarray
    valid: np.ndarray
    stamps: np.ndarray
    future: np.ndarray
    future_ok: np.ndarray
    true_height: np.ndarray

    @property
    def size(self) -> int:
        """Number of samples."""
        return len(self.valid)


@dataclass(frozen=True)
class SampleSpec:
    """How samples are cut and degraded.

    Attributes:
        history_s: span of raw history kept before now [s].
        times_s: times ahead of now of the targets [s].
        sample_every_s: one sample per track every this many seconds (at least every frame).
        box_jitter: std of the centre noise relative to height; size noise in relative log-scale.
        miss_rate: probability a frame of the history is unmeasured.
        lost_fraction: fraction of samples whose last frames are hidden (a lost track).
        max_lost_s: longest such hidden tail [s].
    """

    history_s: float = 1.6
    times_s: tuple[float, ...] = tuple(0.2 * i for i in range(11))
    sample_every_s: float = 0.0
    box_jitter: float = 0.03
    miss_rate: float = 0.1
    lost_fraction: float = 0.3
    max_lost_s: float = 1.0


def load_tracks(name: str, data_root: str | Path) -> tuple[list[Track], float]:
    """Tracks and frame rate of a sequence (see the module docstring for names).

    Raises:
        FileNotFoundError: the sequence folder or its ground truth is missing.
        ValueError: a malformed synthetic name.
    """
    if name.startswith("synthetic:"):
        return _synthetic_tracks(name)
    from ros2_tracker.io.mot import read_mot
    from ros2_tracker.io.sequence import read_sequence_info

    root = Path(data_root) / name
    gt_path = root / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise FileNotFoundError(f"{gt_path}: ground truth not found (sequence {name!r} under {data_root})")
    info = read_sequence_info(root)
    gt = read_mot(gt_path, note_unsorted=False)
    keep = gt.scores > 0
    if gt.extra.shape[1] in (1, 2):  # MOT17 style: pedestrians only
        keep &= gt.extra[:, 0] == 1
    frames, ids = gt.frames[keep], gt.ids[keep]
    tlwh = gt.boxes_tlwh[keep]
    boxes = np.column_stack([tlwh[:, 0] + tlwh[:, 2] / 2, tlwh[:, 1] + tlwh[:, 3] / 2, tlwh[:, 2:]])
    return _group(frames, ids, boxes, np.ones(len(frames), dtype=bool)), float(info.fps)


def _synthetic_tracks(name: str) -> tuple[list[Track], float]:
    from ros2_tracker.synthetic import SceneConfig, generate_scene

    try:
        seed_text, fps_text = name.split(":", 1)[1].split("@")
        seed, fps = int(seed_text), float(fps_text)
    except ValueError:
        raise ValueError(f"{name!r}: expected synthetic:<seed>@<fps>, e.g. synthetic:3@10") from None
    style = np.random.default_rng([seed, 7919])  # how straight people walk in this scene
    scene = generate_scene(SceneConfig(seed=seed, fps=fps, num_frames=round(20.0 * fps), miss_rate=0.0,
                                       false_positives_per_frame=0.0, stop_rate=style.uniform(0.0, 0.06),
                                       heading_noise=style.uniform(0.05, 0.35)))
    gt = scene.gt
    tlwh = gt.boxes_tlwh
    boxes = np.column_stack([tlwh[:, 0] + tlwh[:, 2] / 2, tlwh[:, 1] + tlwh[:, 3] / 2, tlwh[:, 2:]])
    return _group(gt.frames, gt.ids, boxes, gt.visibility >= _MIN_VISIBILITY), fps


def _group(frames: np.ndarray, ids: np.ndarray, boxes: np.ndarray, measured: np.ndarray) -> list[Track]:
    order = np.lexsort((frames, ids))
    cuts = np.flatnonzero(np.diff(ids[order])) + 1
    return [Track(frames[r], boxes[r], measured[r]) for r in np.split(order, cuts) if len(r) >= 2]


def make_samples(name: str, tracks: list[Track], fps: float, spec: SampleSpec,
                 rng: np.random.Generator) -> SampleSet:
    """Cut degraded samples from every track of a sequence (see :class:`SampleSet`)."""
    k = max(2, math.ceil(spec.history_s * fps) + 1)
    stamps = (np.arange(k) - (k - 1)) / fps
    times = np.asarray(spec.times_s)
    stride = max(1, round(spec.sample_every_s * fps))
    parts = [_track_samples(t, fps, k, times, stride) for t in tracks]
    parts = [p for p in parts if p is not None]
    if not parts:
        return SampleSet(name, np.zeros((0, k, 4)), np.zeros((0, k), bool), stamps,
                         np.zeros((0, len(times), 2)), np.zeros((0, len(times)), bool), np.zeros(0))
    boxes, valid, fut, fut_ok, h = (np.concatenate(x) for x in zip(*parts, strict=True))
    boxes, valid = _degrade(boxes, valid, fps, spec, rng)
    keep = valid.any(axis=1)
    return SampleSet(name, boxes[keep], valid[keep], stamps, fut[keep], fut_ok[keep], h[keep])


def _track_samples(track: Track, fps: float, k: int, times: np.ndarray, stride: int):
    """Per-frame history windows and future targets of one track (its frames may have gaps)."""
    f0 = int(track.frames[0])
    span = int(track.frames[-1]) - f0 + 1
    dense = np.zeros((span + k, 4))  # k leading empty frames pad the start
    ok = np.zeros(span + k, dtype=bool)
    dense[track.frames - f0 + k] = track.boxes_cxcywh
    ok[track.frames - f0 + k] = track.measured
    anchors = (track.frames - f0 + k)[::stride]
    anchors = anchors[ok[anchors]]  # "now" is a measured frame (a lost tail is added later)
    if not len(anchors):
        return None
    win = anchors[:, None] + np.arange(-k + 1, 1)[None, :]
    # targets: linear interpolation of the true centres at now + t
    t_true = (track.frames - f0 + k) / fps
    t_query = anchors[:, None] / fps + times[None, :]
    fut = np.stack([np.interp(t_query, t_true, track.boxes_cxcywh[:, c]) for c in (0, 1)], axis=-1)
    fut_ok = t_query <= t_true[-1] + 1e-9
    return dense[win], ok[win], fut, fut_ok, dense[anchors, 3]


def _degrade(boxes: np.ndarray, valid: np.ndarray, fps: float, spec: SampleSpec,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like noise, misses and occluded tails (the last column stays measured unless lost)."""
    n, k = valid.shape
    h = np.maximum(boxes[..., 3:4], 1.0)
    noisy = boxes.copy()
    noisy[..., :2] += spec.box_jitter * h * rng.standard_normal((n, k, 2))
    noisy[..., 2:] *= np.exp(spec.box_jitter * rng.standard_normal((n, k, 2)))
    valid = valid & (rng.random((n, k)) >= spec.miss_rate)
    valid[:, -1] = True  # "now" is a measured frame, unless hidden below
    lost = rng.random(n) < spec.lost_fraction
    tail = np.minimum(rng.integers(1, max(2, round(spec.max_lost_s * fps) + 1), n), k - 2)
    hide = lost[:, None] & (np.arange(k)[None, :] >= (k - tail)[:, None])
    return noisy, valid & ~hide


def encode_samples(samples: SampleSet, history_steps: int, history_step_s: float, min_history: int,
                   noise: MotionNoise) -> tuple[EncodedHistory, np.ndarray]:
    """Model input of samples with at least ``min_history`` valid grid points, and which those are.

    The Kalman state the features include is filtered from each history window alone with ``noise``
    (fixed: the tracker's running state, with adaptive noise and a longer past, differs a little).
    """
    grid, ok = resample_history(samples.boxes_cxcywh, samples.valid, samples.stamps, 0.0, history_steps,
                                history_step_s)
    use = ok.sum(axis=1) >= min_history
    mean, _ = filter_history(samples.boxes_cxcywh[use], samples.valid[use], samples.stamps, 0.0, noise)
    return encode_history(grid[use], ok[use], history_step_s, mean), use
