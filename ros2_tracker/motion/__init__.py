"""Learned trajectory prediction: a recurrent model of track motion, its training data, export and runtime.

The tracker reads it through :class:`ros2_tracker.core.motion.TrajectoryPredictor`;
``create_predictor(tracker_config)`` builds the configured one (None = the default constant-velocity
Kalman predictor). Only the runtime is imported here (numpy + ONNX Runtime when a model is opened);
training (``model``, ``data``, ``ros2_tracker.training.train_motion``) needs torch.
"""

from ros2_tracker.motion.onnx_predictor import MotionModelError, OnnxMotionPredictor, create_predictor

__all__ = ["MotionModelError", "OnnxMotionPredictor", "create_predictor"]
