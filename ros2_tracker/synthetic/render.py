"""Rendering of synthetic scenes with OpenCV: a textured street, people, a pillar, sensor noise.

Each person is drawn as a head, hair, torso, arms and swinging legs whose colours come from a
random stream keyed by (scene seed, identity): an identity looks the same in every frame and in
every rendering, so appearance re-identification is possible. People and the pillar are painted
far to near, consistently with the ground-truth visibility. A frame's image depends only on the
scene and the frame number (not on the order frames are rendered in).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ros2_tracker.io.files import OutputWriteError
from ros2_tracker.synthetic.scene import NOMINAL_PERSON_HEIGHT_M, Scene, random_streams

__all__ = ["Look", "SceneRenderer", "draw_person", "write_frames"]

_SHIFT = 2  # OpenCV fixed-point bits: sub-pixel drawing gives smooth motion
_ONE = 1 << _SHIFT
_NOISE_BANK = 8  # pre-drawn noise images, picked per frame
_TROUSERS = ((120, 70, 40), (40, 40, 40), (110, 150, 170), (90, 90, 90), (60, 45, 30), (150, 130, 110))
_SKIN = ((150, 180, 225), (120, 155, 205), (90, 120, 170), (60, 85, 125), (170, 195, 235))
_HAIR = ((20, 20, 25), (30, 50, 80), (60, 90, 130), (150, 160, 170), (40, 40, 60))


class Look(NamedTuple):
    """Colours (BGR) and style of one identity."""

    shirt: tuple[int, int, int]
    stripe: tuple[int, int, int] | None
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]


def _bgr_from_hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(255 * b), int(255 * g), int(255 * r)


class SceneRenderer:
    """Renders the frames of one scene (the background is built once, in the constructor).

    Args:
        scene: the scene to render.
    """

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._render_seq = random_streams(scene.config.seed)[2]
        rng = np.random.default_rng(self._render_seq)
        self.background = self._background(rng)
        self._noise = self._noise_bank(rng)
        self._pillar = self._pillar_patch(rng)
        self._looks: dict[int, Look] = {}

    # ----------------------------------------------------------------------------- static parts
    def _background(self, rng: np.random.Generator) -> np.ndarray:
        c, cam = self.scene.config, self.scene.camera
        h, w = c.height, c.width
        rows = np.arange(h, dtype=np.float32)[:, None]
        far_row = float(cam.foot_row(cam.focal_px * NOMINAL_PERSON_HEIGHT_M / c.min_box_height))
        wall_base = int(far_row - 0.03 * h)
        img = np.empty((h, w, 3), np.float32)
        wall = np.array(_bgr_from_hsv(rng.uniform(0.02, 0.15), 0.25, 0.7), np.float32)
        ground = np.array(_bgr_from_hsv(rng.uniform(0.05, 0.12), 0.12, 0.55), np.float32)
        shade = (0.75 + 0.25 * rows / h)[..., None]
        img[:] = np.where(rows[..., None] < wall_base, wall, ground) * shade
        self._draw_windows(img, wall_base, rng)
        self._draw_paving(img, wall_base)
        coarse = rng.normal(0.0, 10.0, (h // 16 + 1, w // 16 + 1)).astype(np.float32)
        img += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
        img += rng.normal(0.0, 3.0, (h, w, 1)).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)

    def _draw_windows(self, img: np.ndarray, wall_base: int, rng: np.random.Generator) -> None:
        w = img.shape[1]
        size = max(8, wall_base // 5)
        glass = np.array(_bgr_from_hsv(rng.uniform(0.5, 0.65), 0.35, 0.35), np.float32)
        for top in range(size // 2, wall_base - size, int(1.6 * size)):
            for left in range(size // 3, w - size, int(1.5 * size)):
                tint = glass * rng.uniform(0.7, 1.3)
                cv2.rectangle(img, (left, top), (left + size, top + size), tint.tolist(), -1)

    def _draw_paving(self, img: np.ndarray, wall_base: int) -> None:
        c, cam = self.scene.config, self.scene.camera
        line = (img[-1, 0] * 0.8).tolist()
        cv2.line(img, (0, wall_base), (c.width, wall_base), (img[wall_base - 1, 0] * 0.5).tolist(), 2)
        depth = float(cam.depth_of_row(c.height - 1))
        while True:  # paving joints every metre of depth
            row = float(cam.foot_row(depth))
            if row <= wall_base:
                break
            cv2.line(img, (0, round(row)), (c.width, round(row)), line, 1, cv2.LINE_AA)
            depth += 1.0
        far = cam.depth_of_row(wall_base + 1)
        near = cam.depth_of_row(c.height - 1)
        for x in np.arange(-30.0, 30.0, 1.0):
            p0 = (cam.cx + cam.focal_px * x / far, cam.foot_row(far))
            p1 = (cam.cx + cam.focal_px * x / near, cam.foot_row(near))
            cv2.line(img, _pt(*p0), _pt(*p1), line, 1, cv2.LINE_AA, _SHIFT)

    def _noise_bank(self, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        sigma = self.scene.config.image_noise
        if sigma <= 0:
            return []
        shape = self.background.shape
        bank = []
        for _ in range(_NOISE_BANK):
            n = rng.normal(0.0, sigma, shape)
            bank.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
        return bank

    def _pillar_patch(self, rng: np.random.Generator) -> np.ndarray | None:
        occ = self.scene.occluder_xyxy
        if occ is None:
            return None
        x0, x1, y1 = round(occ[0]), round(occ[2]), round(occ[3])
        w, h = max(1, x1 - x0), max(1, y1)
        across = np.linspace(-1.0, 1.0, w, dtype=np.float32)
        light = 0.55 + 0.45 * np.sqrt(np.clip(1 - (across - 0.3) ** 2 / 1.7, 0, 1))  # round column
        base = np.array(_bgr_from_hsv(rng.uniform(0.05, 0.1), 0.08, 0.75), np.float32)
        patch = base * light[None, :, None] * np.ones((h, 1, 1), np.float32)
        patch += rng.normal(0.0, 4.0, (h, w, 1)).astype(np.float32)
        patch[-max(2, h // 40):] *= 0.6  # darker plinth
        return np.clip(patch, 0, 255).astype(np.uint8)

    def _paste_pillar(self, img: np.ndarray) -> None:
        if self._pillar is None or self.scene.occluder_xyxy is None:
            return
        x0 = round(self.scene.occluder_xyxy[0])
        h, w = self._pillar.shape[:2]
        a, b = max(0, x0), min(img.shape[1], x0 + w)
        if a < b:
            img[:h, a:b] = self._pillar[: img.shape[0], a - x0:b - x0]

    # ----------------------------------------------------------------------------------- people
    def look(self, identity: int) -> Look:
        """The colours of an identity (stable for a given scene seed)."""
        if identity not in self._looks:
            seq = np.random.SeedSequence(self._render_seq.entropy,
                                         spawn_key=(*self._render_seq.spawn_key, int(identity)))
            rng = np.random.default_rng(seq)
            shirt = _bgr_from_hsv(rng.random(), rng.uniform(0.35, 1.0), rng.uniform(0.35, 0.95))
            stripe = (_bgr_from_hsv(rng.random(), rng.uniform(0.2, 1.0), rng.uniform(0.5, 1.0))
                      if rng.random() < 0.35 else None)
            self._looks[identity] = Look(
                shirt=shirt, stripe=stripe, trousers=_TROUSERS[rng.integers(len(_TROUSERS))],
                skin=_SKIN[rng.integers(len(_SKIN))], hair=_HAIR[rng.integers(len(_HAIR))])
        return self._looks[identity]

    def render(self, frame: int) -> np.ndarray:
        """The (H, W, 3) uint8 BGR image of ``frame`` (1-based)."""
        gt = self.scene.frame_gt(frame)
        img = self.background.copy()
        depths = gt.ground_xz[:, 1]
        pillar_drawn = False
        for i in np.argsort(-depths, kind="stable"):
            if not pillar_drawn and depths[i] < self.scene.occluder_depth_m:
                self._paste_pillar(img)
                pillar_drawn = True
            draw_person(img, gt.boxes_tlwh[i], self.look(int(gt.ids[i])), float(gt.walk_phase[i]))
        if not pillar_drawn:
            self._paste_pillar(img)
        if self._noise:
            pos, neg = self._noise[(frame * 7919) % len(self._noise)]
            cv2.add(img, pos, dst=img)
            cv2.subtract(img, neg, dst=img)
        return img


def _pt(x: float, y: float) -> tuple[int, int]:
    """A fixed-point OpenCV point (``_SHIFT`` fractional bits)."""
    return round(x * _ONE), round(y * _ONE)


def draw_person(img: np.ndarray, box_tlwh: np.ndarray, look: Look, phase: float) -> None:
    """Draw one person filling ``box_tlwh`` [px] (head, torso, arms, legs swinging with ``phase``), every
    stroke inside the box: the ground truth box encloses the drawn person (within a pixel of
    anti-aliasing; feet down to the bottom edge)."""
    x0, y0, w, h = (float(v) for v in box_tlwh)
    cx = x0 + 0.5 * w
    swing = 0.22 * w * np.sin(phase)
    leg_t = max(2, round(0.2 * w))
    arm_t = max(1, round(0.13 * w))
    foot_y = y0 + h - max(0.02 * h, 0.5 * leg_t) - 1.0  # foot, leg cap and anti-aliasing end by y0 + h
    hip_y, shoulder_y = y0 + 0.52 * h, y0 + 0.17 * h
    aa = cv2.LINE_AA
    for side, s in ((-1, swing), (1, -swing)):
        cv2.line(img, _pt(cx + side * 0.16 * w, hip_y), _pt(cx + side * 0.12 * w + s, foot_y),
                 look.trousers, leg_t, aa, _SHIFT)
        cv2.ellipse(img, _pt(cx + side * 0.12 * w + s, foot_y), _pt(0.11 * w, 0.02 * h), 0, 0, 360,
                    (30, 30, 30), -1, aa, _SHIFT)
    sleeve = tuple(int(0.8 * v) for v in look.shirt)
    for side, s in ((-1, -0.4 * swing), (1, 0.4 * swing)):  # hand: 0.32 w + 0.09 w swing + half the sleeve
        cv2.line(img, _pt(cx + side * 0.4 * w, shoulder_y + 0.03 * h),
                 _pt(cx + side * 0.32 * w + s, y0 + 0.5 * h), sleeve, arm_t, aa, _SHIFT)
    torso = np.array([_pt(cx - 0.4 * w, shoulder_y), _pt(cx + 0.4 * w, shoulder_y),
                      _pt(cx + 0.32 * w, hip_y), _pt(cx - 0.32 * w, hip_y)], np.int32)
    cv2.fillConvexPoly(img, torso, look.shirt, aa, _SHIFT)
    if look.stripe is not None:
        band = np.array([_pt(cx - 0.38 * w, y0 + 0.3 * h), _pt(cx + 0.38 * w, y0 + 0.3 * h),
                         _pt(cx + 0.36 * w, y0 + 0.37 * h), _pt(cx - 0.36 * w, y0 + 0.37 * h)], np.int32)
        cv2.fillConvexPoly(img, band, look.stripe, aa, _SHIFT)
    r = 0.075 * h
    head = _pt(cx, y0 + r + 0.01 * h)
    cv2.line(img, _pt(cx, y0 + 2 * r), _pt(cx, shoulder_y), look.skin, max(1, round(0.12 * w)), aa, _SHIFT)
    cv2.circle(img, head, round(r * _ONE), look.skin, -1, aa, _SHIFT)
    cv2.ellipse(img, head, _pt(r * 1.02, r * 1.02), 0, 180, 360, look.hair, -1, aa, _SHIFT)


def write_frames(scene: Scene, folder: str | Path, *, jpeg_quality: int = 90,
                 progress: Callable[[int], None] | None = None) -> None:
    """Render every frame of ``scene`` to ``folder/000001.jpg`` ...

    Raises:
        ValueError: ``jpeg_quality`` outside 1..100.
        OSError: a frame could not be written.
    """
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    renderer = SceneRenderer(scene)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    for frame in range(1, scene.num_frames + 1):
        path = out / f"{frame:06d}.jpg"
        if not cv2.imwrite(str(path), renderer.render(frame), params):
            raise OutputWriteError(f"{path}: could not write the frame (folder not writable, or disk full?)")
        if progress is not None:
            progress(frame)
