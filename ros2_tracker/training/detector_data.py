"""Detector training data: person boxes of MOTChallenge frames, split by sequence, and augmentation.

:func:`load_frames` reads the frames of whole sequences (``gt/gt.txt`` + ``img1/``; a folder without
``gt/`` such as ``MOT17-mini`` stands for every sequence under it) into memory, each shrunk once so that
its short side is at most ``max_short_side`` (the largest network input that augmentation asks for),
with ground-truth boxes in the stored image's pixels.

Ground truth: MOT17 style (9 columns) counts rows with consider flag 1, class 1 (pedestrian) and
visibility >= ``min_visibility`` as persons; the other person-like rows (flag 0, person on vehicle,
static person, distractor, reflection, or too occluded) are *ignore* regions, which evaluation neither
rewards nor penalises. MOT15 style (TUD, PETS: no class column) counts every row with conf > 0. Boxes
are clipped to the image; persons lower than ``min_box_height`` (stored px) become ignore regions.

:class:`Augmenter` makes a training batch: random horizontal flip, scale jitter of the network input
size and colour jitter (brightness, contrast, saturation), then :func:`prepare_images`. Frames only
with images count: MOT17-mini has images for its first frames only.

numpy and OpenCV (inside the functions); :meth:`Augmenter.batch` imports the model module (torch) for
:func:`~ros2_tracker.regression.backends.torchvision_frcnn.prepare_images`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_tracker.io.mot import MotFormatError, read_mot
from ros2_tracker.io.sequence import read_sequence_info
from ros2_tracker.io.video import read_image

__all__ = ["IGNORE_CLASSES", "Augmenter", "DetectionFrame", "find_sequences", "load_frames",
           "load_sequence_frames"]

IGNORE_CLASSES = (1, 2, 7, 8, 12)
"""MOT17 classes whose rows that are not counted as persons are ignore regions: pedestrian (flag 0 or
occluded), person on vehicle, static person, distractor, reflection."""


@dataclass(frozen=True)
class DetectionFrame:
    """One frame with its person boxes.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR, stored at ``scale`` times the original size.
        boxes_xyxy: ``(K, 4)`` float64 person boxes in stored-image pixels.
        ignore_xyxy: ``(M, 4)`` float64 ignore regions in stored-image pixels.
        sequence: sequence name.
        frame: frame number (1-based).
        scale: stored px per original px.
    """

    image: np.ndarray
    boxes_xyxy: np.ndarray
    ignore_xyxy: np.ndarray
    sequence: str
    frame: int
    scale: float


def find_sequences(data_root: str | Path, names: Sequence[str]) -> list[Path]:
    """Sequence folders of ``names`` under ``data_root``; a folder without ``gt/`` expands to the sequences
    below it (``MOT17-mini`` -> ``MOT17-mini/train/MOT17-02-FRCNN``, ...), sorted.

    Raises:
        MotFormatError: a name that is no folder, or a folder with no sequence (``gt/gt.txt``) below it.
    """
    root = Path(data_root)
    out: list[Path] = []
    for name in names:
        folder = root / name
        if not folder.is_dir():
            raise MotFormatError(f"{folder}: no such sequence folder (data root {root})")
        if (folder / "gt" / "gt.txt").is_file():
            out.append(folder)
            continue
        found = sorted(p.parent.parent for p in folder.glob("**/gt/gt.txt"))
        if not found:
            raise MotFormatError(f"{folder}: no MOTChallenge sequence (gt/gt.txt) in it or below it")
        out.extend(found)
    return out


def _person_rows(scores: np.ndarray, extra: np.ndarray,
                 min_visibility: float) -> tuple[np.ndarray, np.ndarray]:
    """``(person mask, ignore mask)`` of ground-truth rows (see the module docstring)."""
    if extra.shape[1] in (1, 2):
        cls = extra[:, 0]
        person = (scores == 1) & (cls == 1)
        if extra.shape[1] == 2:
            person &= extra[:, 1] >= min_visibility
        return person, np.isin(cls, IGNORE_CLASSES) & ~person
    return scores > 0, np.zeros(len(scores), bool)


def _clip_xyxy(boxes_tlwh: np.ndarray, hw: tuple[int, int], scale: float) -> np.ndarray:
    x1, y1 = boxes_tlwh[:, 0], boxes_tlwh[:, 1]
    xyxy = np.stack([x1, y1, x1 + boxes_tlwh[:, 2], y1 + boxes_tlwh[:, 3]], axis=1)
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, hw[1])
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, hw[0])
    return xyxy * scale


def load_sequence_frames(root: str | Path, *, max_short_side: int, max_long_side: int,
                         min_visibility: float = 0.25, min_box_height: float = 8.0,
                         max_frames: int = 0) -> list[DetectionFrame]:
    """The frames of one sequence that have an image, with their person boxes and ignore regions.

    Args:
        root: sequence folder (``gt/gt.txt``, ``img1/``, ``seqinfo.ini``).
        max_short_side: frames are shrunk (area interpolation) so their short side is at most this [px].
        max_long_side: ... and their long side at most this [px].
        min_visibility: MOT17-style ground truth: persons less visible are ignore regions.
        min_box_height: persons lower than this in the stored image become ignore regions [px].
        max_frames: keep at most this many frames, evenly spaced (0 = all).

    Raises:
        MotFormatError: no folder, no ground truth, no image for any ground-truth frame, unreadable image.
    """
    import cv2

    info = read_sequence_info(root)
    gt = read_mot(info.gt_path, note_unsorted=False)
    person, ignore = _person_rows(gt.scores, gt.extra, min_visibility)
    last = info.length if info.length else gt.last_frame
    frames = [f for f in range(1, last + 1) if info.frame_path(f).is_file()]
    if not frames:
        raise MotFormatError(f"{info.root}: no image in {info.image_dir} for any ground-truth frame")
    if max_frames and len(frames) > max_frames:
        spread = np.unique(np.round(np.linspace(0, len(frames) - 1, max_frames)).astype(int))
        frames = [frames[i] for i in spread]
    out = []
    for f in frames:
        image = read_image(info.frame_path(f))
        if image is None:
            raise MotFormatError(f"{info.frame_path(f)}: not a readable image")
        hw = image.shape[:2]
        scale = min(1.0, max_short_side / min(hw), max_long_side / max(hw))
        if scale < 1.0:
            size = (round(hw[1] * scale), round(hw[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        rows = gt.frames == f
        boxes = _clip_xyxy(gt.boxes_tlwh[rows & person], hw, scale)
        small = (boxes[:, 3] - boxes[:, 1] < min_box_height) | (boxes[:, 2] - boxes[:, 0] < 1.0)
        ignored = np.concatenate([_clip_xyxy(gt.boxes_tlwh[rows & ignore], hw, scale), boxes[small]])
        out.append(DetectionFrame(image, boxes[~small], ignored, info.name, f, scale))
    return out


def load_frames(data_root: str | Path, names: Sequence[str], **kwargs) -> list[DetectionFrame]:
    """:func:`load_sequence_frames` of every sequence of :func:`find_sequences` (same keyword arguments)."""
    return [fr for seq in find_sequences(data_root, names) for fr in load_sequence_frames(seq, **kwargs)]


class Augmenter:
    """Training batches with random flip, scale jitter and colour jitter.

    Args:
        min_size: network short side at scale factor 1 [px].
        max_size: network long-side limit at scale factor 1 [px].
        scale_range: ``(low, high)`` factor of the network input size, drawn per image.
        flip: random horizontal flips (p = 0.5).
        colour: strength of brightness/contrast/saturation jitter (0 = none; 0.3 = +-30 %).
        seed: random seed.
    """

    def __init__(self, min_size: int, max_size: int, scale_range: tuple[float, float] = (1.0, 1.0),
                 flip: bool = True, colour: float = 0.0, seed: int = 0):
        self.min_size, self.max_size = min_size, max_size
        self.scale_range, self.flip, self.colour = scale_range, flip, colour
        self.rng = np.random.default_rng(seed)

    def sample(self, frame: DetectionFrame) -> tuple[np.ndarray, np.ndarray, float]:
        """``(augmented stored image, its boxes xyxy, resize factor to the network input)``."""
        image, boxes = frame.image, frame.boxes_xyxy.copy()
        if self.flip and self.rng.random() < 0.5:
            image = image[:, ::-1]
            w = image.shape[1]
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        if self.colour > 0:
            image = self._colour(image)
        jitter = self.rng.uniform(*self.scale_range)
        h, w = image.shape[:2]
        scale = jitter * min(self.min_size / min(h, w), self.max_size / max(h, w))
        return np.ascontiguousarray(image), boxes, scale

    def _colour(self, image: np.ndarray) -> np.ndarray:
        a = self.colour
        contrast, saturation = self.rng.uniform(1 - a, 1 + a, 2)
        brightness = self.rng.uniform(-a, a) * 80.0
        img = image.astype(np.float32)
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * saturation
        img = (img - img.mean()) * contrast + img.mean() + brightness
        return np.clip(img, 0, 255).astype(np.uint8)

    def batch(self, frames: Sequence[DetectionFrame]) -> tuple[np.ndarray, list[tuple[int, int]],
                                                                list[np.ndarray]]:
        """``((B, 3, H, W) float32 network input, unpadded sizes, (K, 4) float32 boxes per image)``."""
        from ros2_tracker.regression.backends.torchvision_frcnn import prepare_images

        samples = [self.sample(f) for f in frames]
        batch, sizes = prepare_images([s[0] for s in samples], [s[2] for s in samples])
        boxes = []
        for (image, b, _), (h, w) in zip(samples, sizes, strict=True):
            sx, sy = w / image.shape[1], h / image.shape[0]
            boxes.append((b * np.array([sx, sy, sx, sy])).astype(np.float32))
        return batch, sizes, boxes
