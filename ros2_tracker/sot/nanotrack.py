"""NanoTrack v2 (a light Siamese tracker: backbone + head ONNX files) on ONNX Runtime.

The networks are NanoTrack v2's published ONNX files; the tracking around them is written here from
the SiamRPN++ / NanoTrack method (Li et al., CVPR 2019; the NanoTrack v2 tracking parameters):

1. ``init``: a square *template* around the target -- side ``sqrt((w + p)(h + p))`` with context
   ``p = 0.5 (w + h)``, padded with the first frame's mean colour -- is resized to 127 px and run
   through the backbone once (an 8 x 8 feature map).
2. ``update``: a *search* square 255/127 times the template's side, centred on the last position, is
   resized to 255 px; the head correlates its features with the template's and gives, on a 16 x 16
   grid of points 16 px apart, a foreground score (softmax of two logits) and the distances from the
   point to the box's four sides.
3. Each candidate's score is multiplied by a penalty for changes of size and aspect ratio
   ``exp(-(r s - 1) k)`` (``r``, ``s`` >= 1 the aspect and size ratios to the current box), blended with a
   cosine window that favours small motion, and the best candidate moves the target there; its size
   follows the candidate's at a learning rate ``lr * penalty * score``.

Why not ``cv2.TrackerNano``: OpenCV 4.x computes the size penalty from the target's *centre
coordinates* instead of its size (so the penalty depends on where the target is in the image), feeds
RGB where the model was trained on BGR, and uses other window / penalty / learning-rate values: on the
targets of ``bench/sot.py`` (frames pooled) its success AUC was 0.618 over all 93, 0.641 on TUD-Campus
and 0.474 on PETS09-S3MF1, where this tracking reaches 0.686, 0.658 and 0.611 (BENCHMARKS.md,
"Single-target tracking"). ONNX Runtime also runs the two networks about four times faster than
OpenCV's DNN module on one core (1.2 vs 5.3 ms per update).

The confidence is the foreground score of the chosen candidate (the classifier's own probability),
not the window-blended ranking score, whose window share alone puts a blank frame near 0.8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.core.config import ConfigError
from ros2_tracker.sot.inputs import check_frame, check_start_box
from ros2_tracker.sot.tracker_base import SotResult

__all__ = ["NANOTRACK_FILES", "NanoTrackParams", "NanoTracker", "SotModelError"]

NANOTRACK_FILES = ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")
"""File names of NanoTrack v2's backbone and head in its model folder."""


class SotModelError(ConfigError):
    """A backend's model files are missing or cannot be loaded; the message names the file."""


@dataclass(frozen=True)
class NanoTrackParams:
    """NanoTrack v2's tracking parameters (those its networks were trained and tuned with)."""

    exemplar_size: int = 127  # template side [px]
    instance_size: int = 255  # search side [px]
    stride: int = 16  # distance between the head's grid points [search px]
    context: float = 0.5  # template context: p = context * (w + h)
    window_influence: float = 0.49
    penalty_k: float = 0.15
    lr: float = 0.385
    min_size: float = 10.0  # smallest box side kept [px]


def _size(w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray | float:
    """Side of the context square around a (w, h) box (context 0.5)."""
    pad = 0.5 * (w + h)
    return np.sqrt((w + pad) * (h + pad))


def _change(ratio: np.ndarray) -> np.ndarray:
    return np.maximum(ratio, 1.0 / ratio)


class NanoTracker:
    """NanoTrack v2 on ONNX Runtime (about 1-2 ms per update on one CPU core).

    Args:
        model_dir: folder with :data:`NANOTRACK_FILES` (e.g. ``../shared/models/nanotrack_v2``).
        num_threads: ONNX Runtime intra-op threads (0 = its default, all cores).
        params: tracking parameters (default: NanoTrack v2's).

    Raises:
        SotModelError: a model file is missing or ONNX Runtime cannot load it.
    """

    def __init__(self, model_dir: str | Path, num_threads: int = 1, params: NanoTrackParams | None = None):
        folder = Path(model_dir).expanduser()
        if not str(model_dir) or not folder.is_dir():
            raise SotModelError(f"model_path: {model_dir!r} is not a folder; the nano backend needs the "
                                f"NanoTrack v2 folder holding {' and '.join(NANOTRACK_FILES)}")
        missing = [f for f in NANOTRACK_FILES if not (folder / f).is_file()]
        if missing:
            raise SotModelError(f"model_path: {folder} has no {', '.join(missing)} (NanoTrack v2 files)")
        self.params = params or NanoTrackParams()
        self._backbone = _open(folder / NANOTRACK_FILES[0], num_threads, dynamic_input=True)
        self._head = _open(folder / NANOTRACK_FILES[1], num_threads, dynamic_input=False)
        self._name = f"nano:onnxruntime ({folder.name})"
        n = self._check_networks(folder)
        p = self.params
        offsets = p.stride * (np.arange(n) - n // 2)  # grid points relative to the search centre [px]
        self._grid_x, self._grid_y = np.meshgrid(offsets.astype(np.float64), offsets.astype(np.float64))
        hann = np.hanning(n)
        self._window = np.outer(hann, hann)
        self._template: np.ndarray | None = None
        self._image_hw: tuple[int, int] | None = None
        self._fill = np.zeros(3)
        self._centre = np.zeros(2)
        self._wh = np.ones(2)

    @property
    def name(self) -> str:
        """Backend description."""
        return self._name

    def _check_networks(self, folder: Path) -> int:
        """Run both networks once on blank crops; the head's grid size (16 for NanoTrack v2)."""
        p = self.params
        try:
            z = self._features(np.zeros((p.exemplar_size, p.exemplar_size, 3), np.uint8))
            x = self._features(np.zeros((p.instance_size, p.instance_size, 3), np.uint8))
            score, _ = self._heads(z, x)
        except Exception as exc:  # ORT's private error types: wrong files in the folder
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SotModelError(f"model_path: {folder}: the NanoTrack networks do not run "
                                f"({detail})") from None
        if score.ndim != 2 or score.shape[0] != score.shape[1]:
            raise SotModelError(f"model_path: {folder}: the head gives a {score.shape} score map, not a "
                                "square grid (not NanoTrack v2 files?)")
        return int(score.shape[0])

    def init(self, frame_bgr: np.ndarray, box_xyxy: np.ndarray) -> None:
        """Start on ``box_xyxy`` (4,) [px] in ``frame_bgr`` ``(H, W, 3)`` uint8 BGR.

        Raises:
            ValueError: bad frame, or a box outside the image, of zero size or too small.
        """
        frame = check_frame(frame_bgr)
        box = check_start_box(box_xyxy, frame.shape[:2])
        self._image_hw = (frame.shape[0], frame.shape[1])
        self._fill = frame.reshape(-1, 3).mean(axis=0)
        self._centre = np.array([box[0] + box[2], box[1] + box[3]]) / 2.0
        self._wh = np.array([box[2] - box[0], box[3] - box[1]], dtype=np.float64)
        side = float(_size(*self._wh))
        self._template = self._features(self._crop(frame, side, self.params.exemplar_size))

    def update(self, frame_bgr: np.ndarray) -> SotResult:
        """The target's box in this frame and the foreground score of the chosen candidate.

        Raises:
            RuntimeError: called before :meth:`init`.
            ValueError: bad frame or one of another size than the start frame.
        """
        if self._template is None:
            raise RuntimeError(f"{self.name}: update() before init()")
        frame = check_frame(frame_bgr, self._image_hw)
        p = self.params
        side = float(_size(*self._wh))
        scale = p.exemplar_size / side  # search-crop px per image px
        search = self._features(self._crop(frame, side * p.instance_size / p.exemplar_size, p.instance_size))
        score, ltrb = self._heads(self._template, search)
        x1, y1 = self._grid_x - ltrb[0], self._grid_y - ltrb[1]
        x2, y2 = self._grid_x + ltrb[2], self._grid_y + ltrb[3]
        w = np.maximum(x2 - x1, 1e-6)
        h = np.maximum(y2 - y1, 1e-6)
        size_change = _change(_size(w, h) / _size(*(self._wh * scale)))
        ratio_change = _change((self._wh[0] / self._wh[1]) / (w / h))
        penalty = np.exp(-(ratio_change * size_change - 1.0) * p.penalty_k)
        ranked = penalty * score * (1.0 - p.window_influence) + self._window * p.window_influence
        best = np.unravel_index(int(np.argmax(ranked)), ranked.shape)
        rate = float(penalty[best] * score[best]) * p.lr
        shift = np.array([x1[best] + x2[best], y1[best] + y2[best]]) / (2.0 * scale)
        hgt, wid = self._image_hw
        self._centre = np.clip(self._centre + shift, 0.0, [wid, hgt])
        new_wh = self._wh * (1.0 - rate) + np.array([w[best], h[best]]) / scale * rate
        self._wh = np.clip(new_wh, p.min_size, [max(wid, p.min_size), max(hgt, p.min_size)])
        box = np.concatenate([self._centre - self._wh / 2.0, self._centre + self._wh / 2.0])
        return SotResult(box, float(np.clip(score[best], 0.0, 1.0)))

    def _crop(self, frame: np.ndarray, side: float, out: int) -> np.ndarray:
        """The ``side`` x ``side`` square around the target, resampled to ``out`` x ``out``.

        Outside the image it is filled with the first frame's mean colour. Box coordinates are
        continuous (pixel i spans [i, i + 1)); OpenCV's pixel centres sit at integers, hence the 0.5.
        """
        import cv2

        k = side / out
        x0 = self._centre[0] - side / 2.0 + 0.5 * k - 0.5
        y0 = self._centre[1] - side / 2.0 + 0.5 * k - 0.5
        warp = np.array([[k, 0.0, x0], [0.0, k, y0]])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # bilinear, as the networks were trained
        return cv2.warpAffine(frame, warp, (out, out), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=tuple(float(v) for v in self._fill))

    def _features(self, crop_bgr: np.ndarray) -> np.ndarray:
        blob = np.ascontiguousarray(crop_bgr.transpose(2, 0, 1)[None], dtype=np.float32)  # BGR, 0-255
        return self._backbone.run(None, {self._backbone.get_inputs()[0].name: blob})[0]

    def _heads(self, template: np.ndarray, search: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(foreground score (n, n), side distances ltrb (4, n, n) [search px])."""
        names = [i.name for i in self._head.get_inputs()]
        logits, ltrb = self._head.run(None, {names[0]: template, names[1]: search})
        logits = logits[0].astype(np.float64)
        score = 1.0 / (1.0 + np.exp(logits[0] - logits[1]))  # softmax over (background, foreground)
        return score, ltrb[0].astype(np.float64)


def _open(path: Path, num_threads: int, *, dynamic_input: bool) -> Any:
    """An ONNX Runtime CPU session; ``dynamic_input`` frees the input's height and width (the
    backbone runs on the 127 px template and the 255 px search crop; its file fixes 255)."""
    import onnx
    import onnxruntime as ort

    from ros2_tracker.backends.onnxruntime import session_options

    def free_size(value: Any, prefix: str) -> None:  # height and width of an NCHW tensor: named, not fixed
        dims = value.type.tensor_type.shape.dim
        for i, name in ((2, "height"), (3, "width")):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = prefix + name

    try:
        model = onnx.load(str(path))
        if dynamic_input:
            free_size(model.graph.input[0], "")
            for out in model.graph.output:
                free_size(out, "out_")
            del model.graph.value_info[:]  # inferred shapes of the 255 px input
        return ort.InferenceSession(model.SerializeToString(), sess_options=session_options(num_threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # protobuf / ORT private error types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SotModelError(f"model_path: {path}: not a loadable ONNX model ({detail})") from None
