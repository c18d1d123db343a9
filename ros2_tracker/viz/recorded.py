"""Annotated video of a recorded run: a bag's camera pictures with the tracks recorded beside them.

A robot's bag holds the camera's ``sensor_msgs/Image`` or ``CompressedImage`` messages and the tracker's
TrackArrays, each stamped with its picture's stamp; each picture is drawn with the tracks of its stamp (a
picture the tracker never got, none). Pictures are decoded one at a time, in recording order.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PICTURE_TYPES", "annotated_frame", "bag_pictures", "write_recorded_video"]

PICTURE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
"""The message types a picture topic may have."""


def bag_pictures(bag: Path, topic: str) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """``(stamp [ns], BGR picture or None, why not)`` of each message of ``topic`` (an Image or
    CompressedImage topic), in recording order; a message that cannot be read or decoded gives None and
    the reason."""
    from ros2_tracker.io.bag import cdr_header_stamp_ns, deserialized, read_bag
    from ros2_tracker.nodes.image_conversions import compressed_msg_to_bgr, image_msg_to_bgr

    for raw, msg, error in deserialized(read_bag(bag, [topic])):
        try:
            stamp = cdr_header_stamp_ns(raw.data)
        except ValueError:
            continue  # no header: no stamp to draw tracks by
        if raw.msgtype not in PICTURE_TYPES:
            yield stamp, None, f"{raw.msgtype} is not a picture"
            continue
        try:
            if error is not None:  # damaged CDR
                raise error
            decode = compressed_msg_to_bgr if raw.msgtype.endswith("CompressedImage") else image_msg_to_bgr
            yield stamp, decode(msg), ""
        except (RuntimeError, ValueError) as exc:  # rclpy's RMWError (bad CDR), ImageConversionError
            yield stamp, None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def write_recorded_video(path: Path, bag: Path, topic: str, recorded: Any, *,
                         title: str) -> tuple[Path, int, int]:
    """Draw ``topic``'s pictures with the tracks of the TrackArray of the same stamp (``recorded``: what
    ``recording.tracks_from_bag`` gave, its ``stamps_ns`` and ``snapshots`` one per TrackArray) into the
    video ``path`` (``.mp4``, or ``.avi`` where the build cannot write it), at the frame rate of the tracks'
    stamps. A picture that cannot be decoded is drawn grey, at the size of the last one, and counted in a
    warning on stderr. Returns the path written, the number of pictures and the number not decoded."""
    import cv2
    from tqdm import tqdm

    from ros2_tracker.refine.outputs import fps_from_stamps
    from ros2_tracker.viz.video import VideoWriter

    by_stamp = dict(zip(recorded.stamps_ns, recorded.snapshots, strict=True))  # (stamped twice: the later)
    fps = fps_from_stamps(recorded.stamps_ns)
    size, count, failed = None, 0, 0
    with VideoWriter(path, fps if fps > 0 else 30.0) as video, tqdm(desc="draw video", unit="frame",
                                                                      leave=False) as bar:
        for stamp, image, _why in bag_pictures(bag, topic):
            count += 1
            failed += image is None
            if image is not None and size is not None and (image.shape[1], image.shape[0]) != size:
                image = cv2.resize(image, size)  # the camera changed its resolution: one size per video
            image = annotated_frame(image, by_stamp.get(stamp), f"{title}  frame {count}", size)
            size = (image.shape[1], image.shape[0])
            video.write(image)
            bar.update(1)
    if failed:
        print(f"warning: {failed} of {count} {topic} pictures could not be decoded: drawn grey",
              file=sys.stderr)
    return video.path, count, failed


def annotated_frame(image: np.ndarray | None, snapshot: Any, label: str,
                    size: tuple[int, int] | None = None) -> np.ndarray:
    """One frame of a tracks video: ``image`` (None: a grey canvas of ``size``, else 640 x 480) with the
    tracks of ``snapshot`` (a ``FrameTracks``; None: none) drawn and ``label`` written in its corner."""
    import cv2

    from ros2_tracker.viz.draw import draw_tracks

    if image is None:
        image = np.full((size[1], size[0], 3) if size else (480, 640, 3), 96, dtype=np.uint8)
    if snapshot is not None:
        image = draw_tracks(image, snapshot.ids, snapshot.boxes_xyxy, snapshot.states, snapshot.trajectories,
                            snapshot.trajectory_cov)
    cv2.putText(image, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return image
