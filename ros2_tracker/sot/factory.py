"""Backend choice for single-target tracking: :class:`SotConfig` and :func:`create_sot_tracker`.

:data:`BACKENDS` is a plain dict of name -> constructor ``(SotConfig) -> SingleTargetTracker``. A new
backend is one entry (a small function importing its module lazily, so heavy runtimes load only when
that backend is chosen); :class:`SotConfig`'s ``backend`` choices, the node's parameter descriptor and
``bench/sot.py`` all follow the dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ros2_tracker.core.config import ConfigBase, param
from ros2_tracker.sot.tracker_base import SingleTargetTracker

__all__ = ["BACKENDS", "SotConfig", "create_follower", "create_sot_tracker"]


def _nano(config: SotConfig) -> SingleTargetTracker:
    from ros2_tracker.sot.nanotrack import NanoTracker

    return NanoTracker(config.model_path, config.num_threads)


def _mil(config: SotConfig) -> SingleTargetTracker:
    from ros2_tracker.sot.opencv_backends import MilTracker

    return MilTracker(config.num_threads)


def _goturn(config: SotConfig) -> SingleTargetTracker:
    from ros2_tracker.sot.goturn import goturn_backend  # model_path: checkpoint.pt or goturn.onnx

    return goturn_backend(config.model_path, config.num_threads)


def _mdnet(config: SotConfig) -> SingleTargetTracker:
    from ros2_tracker.sot.mdnet import mdnet_backend  # no model file

    return mdnet_backend(config.model_path, config.num_threads)


def _rolo(config: SotConfig) -> SingleTargetTracker:
    from ros2_tracker.sot.rolo import rolo_backend  # model_path: "checkpoint.pt,yolox_nano.onnx"

    return rolo_backend(config.model_path, config.num_threads)


BACKENDS: dict[str, Callable[[SotConfig], SingleTargetTracker]] = {
    "nano": _nano,
    "mil": _mil,
    "goturn": _goturn,
    "mdnet": _mdnet,
    "rolo": _rolo,
}
"""Single-target backends by name (see the module docstring)."""

@dataclass(frozen=True)
class SotConfig(ConfigBase):
    """Which single-target backend runs, and its model."""

    backend: str = param("nano", "Single-target tracker backend", choices=tuple(BACKENDS), read_only=True)
    model_path: str = param("", "Backend model: for nano the NanoTrack v2 folder (nanotrack_backbone_sim"
                            ".onnx + nanotrack_head_sim.onnx); for learned backends their model file; mil "
                            "needs none", read_only=True)
    num_threads: int = param(1, "CPU threads of the backend (0 = the runtime's default: all cores)", low=0,
                             high=256, read_only=True)


def create_sot_tracker(config: SotConfig) -> SingleTargetTracker:
    """A new, un-initialised backend of ``config.backend``.

    Raises:
        ConfigError: unknown backend, or its model cannot be loaded (the message names ``model_path``).
    """
    from ros2_tracker.core.config import ConfigError

    make = BACKENDS.get(config.backend)
    if make is None:
        raise ConfigError(f"backend: {config.backend!r} is not one of {', '.join(BACKENDS)}")
    return make(config)


def create_follower(sot: SotConfig, follower: Any = None, *, detector_model_path: str = "",
                    detector_score_threshold: float = 0.3, detector_classes: list[int] | None = None,
                    reid_model_path: str = "") -> Any:
    """A :class:`~ros2_tracker.sot.follower.Follower` of ``sot``'s backend, with re-acquisition models.

    Args:
        sot: backend choice.
        follower: :class:`~ros2_tracker.sot.follower.FollowerConfig` (None: defaults).
        detector_model_path: YOLOX ONNX model for re-acquisition ("" = none; needs ``reid_model_path``).
        detector_score_threshold: its minimum score.
        detector_classes: its COCO classes (default ``[0]``, person).
        reid_model_path: re-ID ONNX model ("" = none).

    Raises:
        ConfigError: a model cannot be loaded (the message names the parameter), or a detector without
            a re-ID model.
    """
    from ros2_tracker.core.config import ConfigError
    from ros2_tracker.sot.follower import Follower

    if detector_model_path and not reid_model_path:
        raise ConfigError("detector_model_path: needs reid_model_path as well")
    embedder = detector = None
    if reid_model_path:
        from ros2_tracker.appearance import EmbedderConfig, create_embedder
        from ros2_tracker.appearance.config import reid_parameter_error

        try:
            embedder = create_embedder(EmbedderConfig(model_path=reid_model_path,
                                                      num_threads=sot.num_threads))
        except ConfigError as exc:  # its only re-ID parameter is reid_model_path
            raise reid_parameter_error(exc, ("model_path",), "reid_model_path") from None
    if detector_model_path:
        from ros2_tracker.detection import DetectorConfig, YoloxDetector

        cfg = DetectorConfig(model_path=detector_model_path, score_threshold=detector_score_threshold,
                             classes=[0] if detector_classes is None else list(detector_classes),
                             num_threads=sot.num_threads)
        try:
            detector = YoloxDetector(cfg)
        except ConfigError as exc:
            raise ConfigError(f"detector_{exc}") from None
    create_sot_tracker(sot)  # fail here, with the model's message, rather than inside the follower
    return Follower(lambda: create_sot_tracker(sot), follower, detector=detector, embedder=embedder)
