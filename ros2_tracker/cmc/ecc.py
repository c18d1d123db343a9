"""ECC image alignment (Evangelidis and Psarakis 2008; ``cv2.findTransformECC``) between consecutive frames.

Each frame is converted to grey and scaled down so its longer side is at most ``cmc_max_side`` pixels;
ECC then finds the warp ``W`` that maps the previous frame's pixel coordinates onto the current frame's
(``current(W x) ~ previous(x)``), with a bounded number of iterations. The warp is returned in full-image
pixels: its linear part is scale-free, its translation is divided by the downscale factor. When ECC fails
(no convergence, a degenerate image, or a final correlation coefficient below ``cmc_min_correlation``:
two views that do not show the same scene, e.g. a cut or a switched camera) the identity is returned and
a :class:`CmcWarning` is issued: a wrong warp would move every track, no warp only loses the
compensation for one frame. ``failures`` counts those frames (callers that log, like the tracker node,
compare it before and after; Python shows a warning of one place only once).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from ros2_tracker.core.config import ConfigBase, param

__all__ = ["CmcConfig", "CmcWarning", "EccAligner", "identity_warp", "warp_boxes"]

MOTION_MODELS = ("translation", "euclidean", "affine")


class CmcWarning(UserWarning):
    """Camera-motion estimation failed for a frame; the identity warp was used."""


@dataclass(frozen=True)
class CmcConfig(ConfigBase):
    """Parameters of :class:`EccAligner` (read-only as ROS parameters: the aligner is made at start-up)."""

    cmc_motion: str = param("euclidean", "Warp model: translation (2 dof), euclidean (rotation + "
                            "translation, 3 dof) or affine (6 dof)", choices=MOTION_MODELS, read_only=True)
    cmc_max_side: int = param(320, "Frames are scaled down so their longer side is at most this before "
                              "alignment (smaller: faster, coarser)", low=32, high=8192, unit="px",
                              read_only=True)
    cmc_iterations: int = param(50, "Most ECC iterations per frame", low=1, high=10000, read_only=True)
    cmc_epsilon: float = param(1e-4, "ECC stops when the correlation coefficient improves by less",
                               low=1e-12, high=1.0, read_only=True)
    cmc_blur: int = param(5, "Gaussian blur kernel of ECC's image pyramid (odd, 1 = none)", low=1, high=31,
                          read_only=True)
    cmc_exclude_boxes: bool = param(True, "Leave the given boxes of moving objects (tracks, detections) out "
                                    "of the alignment; off: the whole image is aligned, so a crowd moving "
                                    "together reads as camera motion", read_only=True)
    cmc_exclude_margin: float = param(0.1, "Boxes of moving objects left out of the alignment are widened "
                                      "by this fraction of their size on each side", low=0.0, high=2.0,
                                      read_only=True)
    cmc_min_correlation: float = param(0.7, "Below this final ECC correlation coefficient the two frames "
                                       "are taken to show different views (a cut, another camera) and the "
                                       "identity warp is used (consecutive frames: 0.95-1; unrelated "
                                       "views: 0.3-0.4)", low=0.0, high=1.0, read_only=True)

    def check(self) -> None:
        """Cross-field validation."""
        from ros2_tracker.core.config import ConfigError

        if self.cmc_blur % 2 == 0:
            raise ConfigError(f"cmc_blur: must be odd, got {self.cmc_blur}")


def identity_warp() -> np.ndarray:
    """The (2, 3) float64 identity warp."""
    return np.eye(2, 3)


def warp_boxes(boxes_xyxy: np.ndarray, warp_2x3: np.ndarray) -> np.ndarray:
    """Move (N, 4) xyxy boxes by a 2x3 affine warp: the centre is warped, width and height scale by
    ``sqrt(|det A|)`` (boxes stay axis-aligned; exact for translation and similarity warps)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    warp = np.asarray(warp_2x3, dtype=np.float64).reshape(2, 3)
    a, t = warp[:, :2], warp[:, 2]
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    half = 0.5 * (boxes[:, 2:] - boxes[:, :2]) * np.sqrt(abs(np.linalg.det(a)))
    moved = centre @ a.T + t
    return np.concatenate([moved - half, moved + half], axis=1)


class EccAligner:
    """Frame-to-frame camera motion by ECC; call :meth:`estimate` once per frame, in order.

    Args:
        config: warp model, downscale and iteration bounds.

    Attributes:
        seconds: total wall time spent in :meth:`estimate` [s].
        frames: frames estimated (the first frame of a sequence included).
        failures: frames where ECC failed and the identity was used.
    """

    def __init__(self, config: CmcConfig | None = None) -> None:
        self.config = config or CmcConfig()
        self._previous: np.ndarray | None = None
        self._previous_size: tuple[int, ...] = ()
        self._scale = 1.0
        self.seconds = 0.0
        self.frames = 0
        self.failures = 0

    def reset(self) -> None:
        """Forget the previous frame (the next estimate returns the identity)."""
        self._previous = None

    def estimate(self, image_bgr: np.ndarray, exclude_xyxy: np.ndarray | None = None) -> np.ndarray:
        """Warp (2, 3) float64 from the previous frame's pixels to this frame's; identity for the first
        frame, after :meth:`reset`, when the image size changes, or when ECC fails (with a warning).

        Args:
            image_bgr: (H, W, 3) uint8 BGR or (H, W) grey frame.
            exclude_xyxy: (N, 4) boxes [px] of moving objects (e.g. the tracks' last boxes) whose pixels
                are left out of the alignment, widened by ``cmc_exclude_margin``: people walking across a
                static camera's view otherwise read as camera motion. Ignored when they would leave less
                than a tenth of the image.

        Raises:
            ValueError: not an image.
        """
        t0 = time.perf_counter()
        try:
            grey = self._prepare(image_bgr)
            size = np.shape(image_bgr)[:2]  # full size: two sizes may scale down to the same one
            previous, self._previous = self._previous, grey
            previous_size, self._previous_size = self._previous_size, size
            self.frames += 1
            if previous is None or previous_size != size:
                return identity_warp()
            exclude = exclude_xyxy if self.config.cmc_exclude_boxes else None
            return self._align(previous, grey, self._mask(grey.shape, exclude))
        finally:
            self.seconds += time.perf_counter() - t0

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        import cv2

        image = np.asarray(image)
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)) or image.size == 0:
            raise ValueError(f"expected an (H, W, 3) BGR or (H, W) grey image, got shape {image.shape}")
        if image.dtype == np.float64:
            image = image.astype(np.float32)
        elif image.dtype not in (np.uint8, np.uint16, np.float32):  # what OpenCV converts and resizes
            raise ValueError(f"expected a uint8, uint16 or float image, got {image.dtype}")
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 and image.shape[2] == 3 else image
        grey = grey.reshape(grey.shape[:2])
        scale = min(1.0, self.config.cmc_max_side / max(grey.shape))
        if scale < 1.0:
            size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        self._scale = scale
        return grey.astype(np.float32)

    def _mask(self, shape: tuple[int, ...], boxes_xyxy: np.ndarray | None) -> np.ndarray | None:
        """uint8 mask (1 = use) of the downscaled frame without the (widened) boxes, or None."""
        if boxes_xyxy is None or not len(boxes_xyxy):
            return None
        b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        b = b[np.isfinite(b).all(axis=1)]
        pad = self.config.cmc_exclude_margin * (b[:, 2:] - b[:, :2])
        b = np.concatenate([b[:, :2] - pad, b[:, 2:] + pad], axis=1) * self._scale
        h, w = shape[:2]
        x0, x1 = (np.clip(b[:, c], 0, w).astype(int) for c in (0, 2))
        y0, y1 = (np.clip(b[:, c], 0, h).astype(int) for c in (1, 3))
        mask = np.ones((h, w), dtype=np.uint8)
        for i in range(len(b)):
            mask[y0[i]:y1[i] + 1, x0[i]:x1[i] + 1] = 0
        return mask if mask.mean() >= 0.1 else None

    def _align(self, previous: np.ndarray, current: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        import cv2

        cfg = self.config
        mode = {"translation": cv2.MOTION_TRANSLATION, "euclidean": cv2.MOTION_EUCLIDEAN,
                "affine": cv2.MOTION_AFFINE}[cfg.cmc_motion]
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, cfg.cmc_iterations, cfg.cmc_epsilon)
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            rho, warp = cv2.findTransformECC(previous, current, warp, mode, criteria, mask, cfg.cmc_blur)
        except cv2.error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
            return self._failed(f"failed ({reason})")
        out = warp.astype(np.float64)
        if not np.isfinite(out).all():
            return self._failed("gave a non-finite warp")
        if not rho >= cfg.cmc_min_correlation:
            return self._failed(f"found no common view (ECC correlation {rho:.2f} < cmc_min_correlation "
                                f"{cfg.cmc_min_correlation:g})")
        out[:, 2] /= self._scale
        return out

    def _failed(self, what: str) -> np.ndarray:
        self.failures += 1
        warnings.warn(f"camera-motion compensation {what}; using the identity warp", CmcWarning, stacklevel=4)
        return identity_warp()
