"""Configuration of a Tracktor box regressor (which model, which runtime, how the frame is scaled)."""

from __future__ import annotations

from dataclasses import dataclass

from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = ["REGRESSOR_BACKENDS", "REGRESSOR_RUNTIMES", "RegressorConfig", "RegressorLoadError"]

REGRESSOR_BACKENDS = ("d2go", "torchvision")
REGRESSOR_RUNTIMES = ("torch", "onnxruntime", "tensorrt")


class RegressorLoadError(ConfigError):
    """A regressor model file is missing, unreadable or not the expected architecture."""


@dataclass(frozen=True)
class RegressorConfig(ConfigBase):
    """Parameters of a :class:`~ros2_tracker.regression.regressor.BoxRegressor` backend."""

    regressor_backend: str = param("d2go", "Two-stage detector: d2go = the pretrained D2Go Faster R-CNN "
                                   "(TorchScript, CPU); torchvision = the Faster R-CNN of train-detector "
                                   "(checkpoint.pt)", choices=REGRESSOR_BACKENDS, read_only=True)
    regressor_runtime: str = param("torch", "Runtime of the torchvision detector: torch, onnxruntime (the "
                                   "ONNX split beside the checkpoint) or tensorrt (engines built from it; "
                                   "falls back to onnxruntime with a warning without TensorRT/CUDA)",
                                   choices=REGRESSOR_RUNTIMES, read_only=True)
    regressor_model_path: str = param("", "Detector model file (D2Go: the TorchScript .pt archive); must "
                                      "be set", read_only=True)
    regressor_short_side: int = param(320, "The frame is scaled so its shorter side has this many pixels "
                                      "before the backbone (D2Go was trained at 320)", low=32, high=4096,
                                      unit="px", read_only=True)
    regressor_class_index: int = param(0, "Class of the detector's head that is tracked (D2Go/COCO: 0 = "
                                       "person)", low=0, high=1000, read_only=True)
    regressor_num_threads: int = param(1, "torch intra-op threads (0 = leave torch's default; the setting "
                                       "is process-wide)", low=0, high=256, read_only=True)

    def check(self) -> None:
        """Cross-field validation."""
        if not self.regressor_model_path:
            raise ConfigError("regressor_model_path: must be set (--regressor-model on the command line, "
                              "-p regressor_model_path:=F for tracker_node), e.g. "
                              "d2go_faster_rcnn_fbnetv3a_C4_int8_coco.pt")
