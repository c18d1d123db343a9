"""Image folders as frame sources: which file is which frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ros2_tracker.io.video import open_frame_source


def folder(tmp_path, names):
    for k, name in enumerate(names):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), 10 * k, np.uint8))
    return open_frame_source(tmp_path)


@pytest.mark.parametrize(("names", "expected"), [
    (["000001.jpg", "000003.jpg", "000004.jpg"], {1: "000001.jpg", 3: "000003.jpg", 4: "000004.jpg"}),
    # numbered from 0: shifted, where the first file used to be left out without a word
    (["000000.jpg", "000001.jpg", "000002.jpg"], {1: "000000.jpg", 2: "000001.jpg", 3: "000002.jpg"}),
    # timestamps are no frame numbers: 1.7e12 frames of "image file missing" before the first image
    (["1700000000000.png", "1700000000033.png"], {1: "1700000000000.png", 2: "1700000000033.png"}),
    (["b.jpg", "a.jpg"], {1: "a.jpg", 2: "b.jpg"}),
])
def test_frame_numbers_of_an_image_folder(tmp_path, names, expected):
    source = folder(tmp_path, names)
    got = {f.number: f for f in source.frames()}
    assert source.length == max(expected)
    assert {k for k, f in got.items() if f.image is not None} == set(expected)
