"""Random-walk box streams for the scaling and memory benchmarks (not a realistic scene: a load generator).

``RandomWalk(n_objects).step()`` returns one frame of detections: each object's box drifts with a
velocity that random-walks, bounces off the image border and is jittered; some objects are missed;
Poisson false positives appear; each object lives a geometric number of frames and is then replaced
by a new one elsewhere (so a tracker keeps creating and retiring tracks, and ids keep growing). The
image side grows with ``sqrt(n_objects)`` so the density, and so the overlap, stays the same at 10 or
1000 objects. Deterministic in ``seed``; numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WalkConfig:
    """Parameters of :class:`RandomWalk`.

    Attributes:
        n_objects: objects present in every frame.
        seed: random seed.
        side_per_sqrt_object: image side [px] per sqrt(object); 300 px gives about 5% box coverage.
        mean_life_frames: mean frames an object lives before it is replaced (0: forever).
        miss_rate: probability that an object is not detected in a frame.
        false_positives: mean false positives per frame, as a fraction of ``n_objects``.
        speed_noise: random-walk step of the velocity [px/frame per frame].
        box_jitter: detection box noise, relative to box height.
    """

    n_objects: int
    seed: int = 0
    side_per_sqrt_object: float = 300.0
    mean_life_frames: float = 300.0
    miss_rate: float = 0.05
    false_positives: float = 0.02
    speed_noise: float = 0.3
    box_jitter: float = 0.03


class RandomWalk:
    """Frame-by-frame detection generator; see the module docstring."""

    def __init__(self, config: WalkConfig) -> None:
        self.config = config
        self.side = config.side_per_sqrt_object * max(1.0, np.sqrt(config.n_objects))
        self._rng = np.random.default_rng(config.seed)
        n = config.n_objects
        self._pos = np.empty((n, 2))
        self._vel = np.empty((n, 2))
        self._h = np.empty(n)
        self._respawn(np.arange(n))

    def _respawn(self, idx: np.ndarray) -> None:
        rng, k = self._rng, len(idx)
        self._h[idx] = rng.uniform(60.0, 160.0, k)
        self._pos[idx] = rng.uniform(100.0, self.side - 100.0, (k, 2))
        self._vel[idx] = rng.normal(0.0, 3.0, (k, 2))

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """Advance one frame.

        Returns:
            boxes_xyxy (D, 4) float64 [px] and scores (D,) in [0, 1]; true detections first, then
            false positives.
        """
        c, rng = self.config, self._rng
        if c.mean_life_frames > 0:
            self._respawn(np.flatnonzero(rng.random(c.n_objects) < 1.0 / c.mean_life_frames))
        self._vel += rng.normal(0.0, c.speed_noise, self._vel.shape)
        self._pos += self._vel
        out = (self._pos < 50.0) | (self._pos > self.side - 50.0)  # bounce off the border
        self._vel[out] *= -1.0
        self._pos = np.clip(self._pos, 50.0, self.side - 50.0)
        seen = rng.random(c.n_objects) >= c.miss_rate
        h = self._h[seen]
        w = 0.4 * h
        centre = self._pos[seen] + rng.normal(0.0, 1.0, (len(h), 2)) * (c.box_jitter * h)[:, None]
        boxes = np.column_stack([centre[:, 0] - w / 2, centre[:, 1] - h / 2, centre[:, 0] + w / 2,
                                 centre[:, 1] + h / 2])
        scores = rng.uniform(0.5, 1.0, len(h))
        n_fp = rng.poisson(c.false_positives * c.n_objects)
        if n_fp:
            fh = rng.uniform(60.0, 160.0, n_fp)
            fc = rng.uniform(100.0, self.side - 100.0, (n_fp, 2))
            fp = np.column_stack([fc[:, 0] - 0.2 * fh, fc[:, 1] - fh / 2, fc[:, 0] + 0.2 * fh,
                                  fc[:, 1] + fh / 2])
            boxes = np.concatenate([boxes, fp])
            scores = np.concatenate([scores, rng.uniform(0.1, 0.7, n_fp)])
        return boxes, scores


def write_mot_detections(path, frames: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Write frames (1-based, in order) of ``(boxes_xyxy, scores)`` as MOTChallenge det rows."""
    with open(path, "w") as f:
        for frame, (b, s) in enumerate(frames, start=1):
            for (x1, y1, x2, y2), sc in zip(b, s, strict=True):
                f.write(f"{frame},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{sc:.4f},-1,-1,-1\n")
