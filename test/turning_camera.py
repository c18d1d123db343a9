"""The scene of the ``use_imu`` tests: three people standing still while the camera, still for half a second,
starts to pan to the right at 60 deg/s (18 px a frame at 30 Hz; their boxes are 20 px wide), and a gyro in
the camera's optical frame. Shared by test/nodes/test_tracker_node_imu.py and test/cli/test_replay_imu.py
(imported as ``from turning_camera import ...``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ros2_tracker.cmc.gyro import GyroBuffer, rotation_homography

FPS, IMU_HZ, T0 = 30.0, 200.0, 100.0  # frame rate, gyro rate [Hz], stamp of frame 0 [s]
K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
PEOPLE = np.array([[380.0, 200.0], [480.0, 220.0], [600.0, 260.0]])  # foot points, static in the world
RATE = math.radians(60.0)  # about the optical y axis (down): a pan to the right, moving the people left


def rate_at(t: float) -> float:
    """The camera's yaw rate at stamp ``t`` [rad/s]: still until T0 + 0.5 s."""
    return RATE if t - T0 >= 0.5 else 0.0


def true_turn(stamps: Iterable[float]) -> GyroBuffer:
    """The camera's true rotation, from its rate at ``stamps`` (noise-free), for drawing the people."""
    truth = GyroBuffer(keep_s=10.0)
    for t in stamps:
        truth.add(t, (0.0, rate_at(t), 0.0))
    return truth


def boxes_at(truth: GyroBuffer, t: float, people: np.ndarray = PEOPLE,
             lens: np.ndarray | None = None) -> np.ndarray:
    """The people's boxes (xyxy, 20 x 40 px above their foot points; ``people``: where an ideal camera sees
    them at T0) as the camera sees them at t; with ``lens``, a plumb_bob D, through that lens (OpenCV's
    projectPoints)."""
    rot = truth.rotation(T0, t) if t > T0 else np.eye(3)
    p = np.c_[people, np.ones(len(people))] @ rotation_homography(K, rot).T
    c = p[:, :2] / p[:, 2:]
    if lens is not None:
        import cv2

        rays = np.c_[(c - K[:2, 2]) / np.diag(K)[:2], np.ones(len(c))]
        c = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, np.asarray(lens, dtype=np.float64))[0]
        c = c.reshape(-1, 2)
    return np.c_[c[:, 0] - 10, c[:, 1] - 40, c[:, 0] + 10, c[:, 1]]
