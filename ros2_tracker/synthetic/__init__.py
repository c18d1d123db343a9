"""Built-in synthetic pedestrian scenes: ground truth, simulated detections, rendered frames.

``generate_scene(SceneConfig(seed=...))`` is deterministic and needs numpy only; rendering frames
(``Scene.render_frame``, ``Scene.write_mot(render=True)``) imports OpenCV when called.
"""

from ros2_tracker.synthetic.scene import (
    Detections,
    GroundCamera,
    GroundTruth,
    Scene,
    SceneConfig,
    Trajectory,
    generate_scene,
)

__all__ = [
    "Detections",
    "GroundCamera",
    "GroundTruth",
    "Scene",
    "SceneConfig",
    "Trajectory",
    "generate_scene",
]
