"""Training data of the learned single-target backends, cut from MOTChallenge ground truth.

* :func:`load_gt_tracks` reads the identities of a sequence folder (``gt/gt.txt`` + ``img1/``) as
  :class:`GtTrack` objects (frames that have an image only; MOT17 non-pedestrian / ignored rows dropped);
* :class:`FrameStore` reads and caches the frames (OpenCV);
* the crop geometry shared by training and the GOTURN-style runtime: :func:`context_window` (a box
  grown ``context`` times about its centre), :func:`crop_windows` (window -> square crop),
  :func:`box_to_window` / :func:`box_from_window` (pixels <-> coordinates in ``[0, 1]`` of a window);
* :func:`motion_jitter`: GOTURN's motion-smoothness augmentation (Held et al., ECCV 2016): the
  centre moves by ``w * dx`` with ``dx ~ Laplace(0, 1/5)`` and the size changes by a factor
  ``Laplace(1, 1/15)``, clipped;
* :class:`PairSampler`: ``(target crop from frame t-g, search crop from frame t, target box in the
  search crop)`` for the GOTURN-style regression, from video pairs and from still frames with the
  motion augmentation;
* :func:`simulate_flicker`: detections made from a ground-truth track the way a detector flickers
  (dropped runs, jitter, a neighbour's box), for the ROLO-style recurrent model.

Boxes are ``x1, y1, x2, y2`` image pixels unless a name says otherwise. numpy and OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ros2_tracker.core.boxes import tlwh_to_xyxy

__all__ = ["CropPairs", "FrameStore", "GtTrack", "PairSampler", "box_from_window", "box_to_window",
           "check_box", "context_window", "crop_windows", "load_gt_tracks", "motion_jitter",
           "simulate_flicker"]

# MOT17 ground truth: class 1 = pedestrian (column 8), visibility in column 9
_PEDESTRIAN = 1


class GtTrack(NamedTuple):
    """One ground-truth identity of a sequence.

    Attributes:
        sequence: the sequence folder.
        track_id: the identity in ``gt.txt``.
        frames: ``(T,)`` int frame numbers (increasing, frames with an image only).
        boxes_xyxy: ``(T, 4)`` float64 boxes [px], clipped to the image.
    """

    sequence: Path
    track_id: int
    frames: np.ndarray
    boxes_xyxy: np.ndarray


def check_box(box_xyxy, image_hw: tuple[int, int] | None = None, what: str = "box_xyxy") -> np.ndarray:
    """A target box as ``(4,)`` float64, or ``ValueError`` saying what is wrong with it.

    Args:
        box_xyxy: ``x1, y1, x2, y2`` [px].
        image_hw: when given, the box must overlap the ``(height, width)`` image.
        what: the argument's name in the message.

    Raises:
        ValueError: not 4 numbers, NaN/inf, zero or negative width/height, or outside the image.
    """
    box = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
    if box.shape != (4,):
        raise ValueError(f"{what}: expected 4 numbers x1, y1, x2, y2, got shape {np.shape(box_xyxy)}")
    if not np.isfinite(box).all():
        raise ValueError(f"{what}: NaN or infinite coordinate in {box.tolist()}")
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        raise ValueError(f"{what}: zero or negative size {box[2] - box[0]:g} x {box[3] - box[1]:g} px "
                         f"(x1, y1, x2, y2 = {box.tolist()})")
    if image_hw is not None:
        h, w = image_hw
        if box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h:
            raise ValueError(f"{what}: {box.tolist()} lies outside the {w} x {h} image")
    return box


def load_gt_tracks(seq_root: str | Path, *, min_length: int = 2, min_visibility: float = 0.3,
                   min_box_height: float = 16.0) -> list[GtTrack]:
    """The ground-truth identities of a MOTChallenge folder, restricted to frames with an image.

    Args:
        seq_root: folder with ``gt/gt.txt``, ``img1/`` and ``seqinfo.ini``.
        min_length: identities with fewer usable frames are dropped.
        min_visibility: MOT17-style ground truth: rows less visible are dropped.
        min_box_height: rows whose clipped box is lower than this [px] are dropped.

    Returns:
        Tracks sorted by id.

    Raises:
        MotFormatError: missing or malformed ``gt.txt`` or ``seqinfo.ini``.
    """
    from ros2_tracker.io.mot import is_mot17_style, read_mot
    from ros2_tracker.io.sequence import read_sequence_info

    info = read_sequence_info(seq_root)
    rows = read_mot(info.gt_path, note_unsorted=False)
    keep = rows.scores != 0  # MOT17: conf 0 marks rows to ignore
    if is_mot17_style(rows):  # MOT15's world coordinates are no class and visibility
        keep &= (rows.extra[:, 0] == _PEDESTRIAN) & (rows.extra[:, 1] >= min_visibility)
    has_image = np.array([info.frame_path(int(f)).is_file() for f in rows.frames], dtype=bool)
    boxes = tlwh_to_xyxy(rows.boxes_tlwh)
    if info.width and info.height:
        boxes = np.clip(boxes, 0, [info.width, info.height, info.width, info.height])
    keep &= has_image & (boxes[:, 3] - boxes[:, 1] >= min_box_height) & (boxes[:, 2] > boxes[:, 0])
    tracks = []
    for tid in np.unique(rows.ids[keep]):
        sel = keep & (rows.ids == tid)
        if sel.sum() >= min_length:
            order = np.argsort(rows.frames[sel], kind="stable")
            tracks.append(GtTrack(info.root, int(tid), rows.frames[sel][order], boxes[sel][order]))
    return tracks


@dataclass
class FrameStore:
    """Frames of MOTChallenge folders, read once with OpenCV and kept (the sequences here are small)."""

    _cache: dict[tuple[Path, int], np.ndarray] = field(default_factory=dict)
    _infos: dict[Path, object] = field(default_factory=dict)

    def frame(self, seq_root: Path, frame: int) -> np.ndarray:
        """``(H, W, 3)`` uint8 BGR image of MOT frame ``frame`` (1-based).

        Raises:
            FileNotFoundError: the image is missing or unreadable.
        """
        from ros2_tracker.io.sequence import read_sequence_info
        from ros2_tracker.io.video import read_image

        key = (Path(seq_root), int(frame))
        if key not in self._cache:
            if key[0] not in self._infos:
                self._infos[key[0]] = read_sequence_info(seq_root)
            path = self._infos[key[0]].frame_path(int(frame))
            image = read_image(path)
            if image is None:
                raise FileNotFoundError(f"{path}: frame image missing or unreadable")
            self._cache[key] = image
        return self._cache[key]

    def drop(self, seq_root: Path, frame: int) -> None:
        """Forget a frame (callers that need each frame once keep memory flat)."""
        self._cache.pop((Path(seq_root), int(frame)), None)


def context_window(boxes_xyxy: np.ndarray, context: float) -> np.ndarray:
    """``(N, 4)`` windows of the same centre as the boxes, ``context`` times their width and height."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    c = (b[:, :2] + b[:, 2:]) / 2
    half = (b[:, 2:] - b[:, :2]) * (context / 2)
    return np.concatenate([c - half, c + half], axis=1)


def box_to_window(boxes_xyxy: np.ndarray, windows_xyxy: np.ndarray) -> np.ndarray:
    """Boxes [px] -> coordinates in their window, ``0`` at its top-left and ``1`` at its bottom-right."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    w = np.asarray(windows_xyxy, dtype=np.float64).reshape(-1, 4)
    size = np.tile(w[:, 2:] - w[:, :2], 2)
    return (b - np.tile(w[:, :2], 2)) / size


def box_from_window(boxes_norm: np.ndarray, windows_xyxy: np.ndarray) -> np.ndarray:
    """Inverse of :func:`box_to_window`: window coordinates -> boxes [px]."""
    b = np.asarray(boxes_norm, dtype=np.float64).reshape(-1, 4)
    w = np.asarray(windows_xyxy, dtype=np.float64).reshape(-1, 4)
    return b * np.tile(w[:, 2:] - w[:, :2], 2) + np.tile(w[:, :2], 2)


def crop_windows(image_bgr: np.ndarray, windows_xyxy: np.ndarray, size: int) -> np.ndarray:
    """Square ``size x size`` crops of the windows (bilinear; outside the image: edge pixels repeated).

    Args:
        image_bgr: ``(H, W, 3)`` uint8.
        windows_xyxy: ``(N, 4)`` windows [px], any aspect ratio (stretched to the square).
        size: crop side [px].

    Returns:
        ``(N, size, size, 3)`` uint8 crops.
    """
    import cv2

    win = np.asarray(windows_xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(win), size, size, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(win):
        sx, sy = size / max(x2 - x1, 1e-6), size / max(y2 - y1, 1e-6)
        # source pixel x (centre at x + 0.5) lands on output pixel u = sx * (x + 0.5 - x1) - 0.5
        m = np.array([[sx, 0.0, sx * (0.5 - x1) - 0.5], [0.0, sy, sy * (0.5 - y1) - 0.5]])
        out[i] = cv2.warpAffine(image_bgr, m, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def motion_jitter(boxes_xyxy: np.ndarray, rng: np.random.Generator, *, shift_scale: float = 0.2,
                  size_scale: float = 1 / 15, max_shift: float = 0.5, max_size_change: float = 0.4,
                  image_hw: tuple[int, int] | None = None) -> np.ndarray:
    """GOTURN's motion-smoothness model: Laplace-distributed shift and scale change of boxes.

    ``cx' = cx + w * dx``, ``dx ~ Laplace(0, shift_scale)`` clipped to ``+-max_shift`` (likewise y
    with h); ``w' = w * g``, ``g ~ Laplace(1, size_scale)`` clipped to ``1 +- max_size_change``.

    Args:
        boxes_xyxy: ``(N, 4)`` boxes [px].
        rng: random generator.
        shift_scale: Laplace scale ``b`` of the shift, in box sizes (the paper: 1/5).
        size_scale: Laplace scale ``b`` of the size factor (the paper: 1/15).
        max_shift: largest shift, in box sizes.
        max_size_change: largest relative size change.
        image_hw: when given, the centres are kept inside the ``(height, width)`` image.

    Returns:
        ``(N, 4)`` moved boxes.
    """
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    n = len(b)
    wh = b[:, 2:] - b[:, :2]
    c = (b[:, :2] + b[:, 2:]) / 2 + wh * np.clip(rng.laplace(0.0, shift_scale, (n, 2)), -max_shift, max_shift)
    if image_hw is not None:
        c = np.clip(c, 0, [image_hw[1] - 1, image_hw[0] - 1])
    g = np.clip(rng.laplace(1.0, size_scale, (n, 2)), 1 - max_size_change, 1 + max_size_change)
    half = wh * g / 2
    return np.concatenate([c - half, c + half], axis=1)


class CropPairs(NamedTuple):
    """A batch of GOTURN-style training samples.

    Attributes:
        targets: ``(N, S, S, 3)`` uint8 BGR crops of the context window of the target in the earlier frame.
        searches: ``(N, S, S, 3)`` uint8 BGR crops of the search window in the later frame.
        boxes_norm: ``(N, 4)`` float32 ground-truth box in search-window coordinates (``[0, 1]`` = window).
    """

    targets: np.ndarray
    searches: np.ndarray
    boxes_norm: np.ndarray


class PairSampler:
    """Draws GOTURN-style crop pairs from ground-truth tracks.

    A *video pair* takes the target from frame ``t - g`` (``1 <= g <= max_gap`` frames of the same
    track) and the search window around the same (old) position in frame ``t``, itself moved by
    :func:`motion_jitter` with probability ``video_jitter``; a *still pair* takes both crops from one
    frame, the search window around a jittered box (GOTURN's training on still images).

    Args:
        tracks: ground-truth tracks (frames must be readable through ``frames``).
        frames: the frame store.
        size: crop side S [px].
        context: window size over box size (GOTURN: 2).
        max_gap: largest frame gap of a video pair.
        still_fraction: share of still pairs.
        video_jitter: probability that a video pair's search window is jittered too.
        shift_scale: see :func:`motion_jitter`.
        size_scale: see :func:`motion_jitter`.

    Raises:
        ValueError: no track with two frames.
    """

    def __init__(self, tracks: Sequence[GtTrack], frames: FrameStore, *, size: int = 96, context: float = 2.0,
                 max_gap: int = 3, still_fraction: float = 0.5, video_jitter: float = 0.5,
                 shift_scale: float = 0.2, size_scale: float = 1 / 15):
        self.tracks = [t for t in tracks if len(t.frames) >= 2]
        if not self.tracks:
            raise ValueError("PairSampler: no ground-truth track with two frames or more")
        self.frames, self.size, self.context = frames, size, context
        self.max_gap, self.still_fraction, self.video_jitter = max_gap, still_fraction, video_jitter
        self.jitter = {"shift_scale": shift_scale, "size_scale": size_scale}
        lengths = np.array([len(t.frames) for t in self.tracks], dtype=np.float64)
        self._weights = lengths / lengths.sum()

    def sample(self, n: int, rng: np.random.Generator) -> CropPairs:
        """``n`` pairs drawn with replacement (tracks weighted by length)."""
        s = self.size
        out = CropPairs(np.empty((n, s, s, 3), np.uint8), np.empty((n, s, s, 3), np.uint8),
                        np.empty((n, 4), np.float32))
        for i, k in enumerate(rng.choice(len(self.tracks), size=n, p=self._weights)):
            target, search, box = self._one(self.tracks[k], rng)
            out.targets[i], out.searches[i], out.boxes_norm[i] = target, search, box
        return out

    def _one(self, track: GtTrack, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = int(rng.integers(1, len(track.frames)))
        still = rng.random() < self.still_fraction
        if still:
            src = t
        else:
            gap = int(rng.integers(1, self.max_gap + 1))
            src = int(np.searchsorted(track.frames, track.frames[t] - gap))
            src = min(src, t - 1)
        prev_box, box = track.boxes_xyxy[src], track.boxes_xyxy[t]
        image_t = self.frames.frame(track.sequence, int(track.frames[t]))
        centre = prev_box
        if still or rng.random() < self.video_jitter:
            centre = motion_jitter(prev_box, rng, image_hw=image_t.shape[:2], **self.jitter)[0]
        search_win = context_window(centre, self.context)
        target = crop_windows(self.frames.frame(track.sequence, int(track.frames[src])),
                              context_window(prev_box, self.context), self.size)[0]
        search = crop_windows(image_t, search_win, self.size)[0]
        return target, search, box_to_window(box, search_win)[0].astype(np.float32)


def simulate_flicker(track: GtTrack, others: dict[int, np.ndarray], rng: np.random.Generator, *,
                     p_drop: float = 0.25, mean_drop_run: float = 2.0, jitter: float = 0.05,
                     p_swap: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Detections of a ground-truth track as a flickering detector would give them.

    Each frame's detection is dropped in runs (a run starts at a frame with probability
    ``q = p_drop / (mean_drop_run * (1 - p_drop) + p_drop)`` and lasts a geometric number of frames of
    mean ``mean_drop_run``, so ``p_drop`` of the frames are missing), otherwise it is the ground-truth
    box with Gaussian jitter of ``jitter`` box sizes on each side, or (probability ``p_swap``) the box
    of the most overlapping other identity of that frame when one overlaps it.

    Args:
        track: the target's ground truth.
        others: frame -> ``(M, 4)`` boxes of the other identities in that frame.
        rng: random generator.
        p_drop: target share of missing frames.
        mean_drop_run: mean length of a run of missing frames (a run may follow another at once: gaps
            between detections are ``m / (1 - q)`` frames long on average, q the chance a run starts).
        jitter: standard deviation of each side's offset, in box widths/heights.
        p_swap: probability of a neighbour's box instead of the target's.

    Returns:
        ``(dets (T, 4) float64 with NaN rows where missing, source (T,) int: 1 target, 0 missing,
        -1 neighbour)``; the first frame always has the target's exact box (the tracker's start).
    """
    n = len(track.frames)
    missing = np.zeros(n, dtype=bool)
    run_mean = max(mean_drop_run, 1.0)
    # each frame examined starts a run (mean length m) with probability q, else is present: the share
    # dropped is q m / (q m + 1 - q), which is p_drop for q = p / (m (1 - p) + p)
    q = p_drop / (run_mean * (1.0 - p_drop) + p_drop)
    t = 1
    while t < n:
        if rng.random() < q:
            run = int(rng.geometric(1.0 / run_mean))
            missing[t:t + run] = True
            t += run
        else:
            t += 1
    boxes = track.boxes_xyxy.copy()
    wh = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    dets = boxes + rng.normal(0.0, jitter, boxes.shape) * wh
    source = np.ones(n, dtype=np.int64)
    for t in np.flatnonzero(rng.random(n) < p_swap):
        other = others.get(int(track.frames[t]))
        if t > 0 and other is not None and len(other):
            from ros2_tracker.core.costs import iou_matrix

            iou = iou_matrix(boxes[t:t + 1], other)[0]
            if iou.max() > 0.1:
                dets[t], source[t] = other[int(np.argmax(iou))], -1
    dets[0], source[0], missing[0] = boxes[0], 1, False
    dets[missing], source[missing] = np.nan, 0
    return dets, source
