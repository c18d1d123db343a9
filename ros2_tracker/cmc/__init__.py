"""Camera-motion compensation: the image motion between consecutive frames as a 2x3 affine warp.

``EccAligner(CmcConfig()).estimate(image_bgr)`` gives the warp mapping the previous frame's pixel
coordinates to the current frame's; ``warp_boxes`` moves boxes by it, and the core tracker's
``Tracker.apply_camera_motion(warp)`` moves its tracks' Kalman states. OpenCV is imported only when an
aligner estimates.
"""

from ros2_tracker.cmc.ecc import CmcConfig, CmcWarning, EccAligner, identity_warp, warp_boxes

__all__ = ["CmcConfig", "CmcWarning", "EccAligner", "identity_warp", "warp_boxes"]
