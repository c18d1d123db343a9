"""Video files written by VideoWriter read back with OpenCV: frame count, size, content."""

import cv2
import numpy as np
import pytest
from conftest import video_frames

from ros2_tracker.viz.video import VideoWriter


def frames(n=12, w=160, h=120):
    out = []
    for k in range(n):
        img = np.full((h, w, 3), 30, np.uint8)
        img[:, 10 * k + 5:10 * k + 15] = (255, 255, 255)  # a bar that moves 10 px per frame
        out.append(img)
    return out


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_written_video_reads_back_with_the_same_frames(tmp_path, suffix):
    with VideoWriter(tmp_path / "sub" / f"out{suffix}", fps=10.0) as vw:
        for img in frames():
            vw.write(img)
    assert vw.frames_written == 12 and vw.path.is_file() and vw.path.stat().st_size > 1000
    got, fps = video_frames(vw.path)
    assert len(got) == 12 and fps == pytest.approx(10.0)
    assert got[0].shape == (120, 160, 3)
    bars = [int(np.argmax(g[:, :, 0].mean(axis=0))) for g in got]
    assert all(abs(b - (10 * k + 9.5)) <= 5 for k, b in enumerate(bars))


def test_grey_frames_and_explicit_size(tmp_path):
    with VideoWriter(tmp_path / "grey.avi", fps=5.0, frame_size=(160, 120)) as vw:
        for img in frames(3):
            vw.write(img[:, :, 0])
    got, _ = video_frames(vw.path)
    assert len(got) == 3


def test_bad_frames_suffix_and_closed_writer_raise(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        VideoWriter(tmp_path / "out.gif", fps=10.0)
    with pytest.raises(ValueError, match="fps"):
        VideoWriter(tmp_path / "out.mp4", fps=0.0)
    vw = VideoWriter(tmp_path / "out.mp4", fps=10.0)
    vw.write(frames(1)[0])
    with pytest.raises(ValueError, match="80x60"):
        vw.write(np.zeros((60, 80, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        vw.write(np.zeros((120, 160, 3), np.float32))
    vw.close()
    vw.close()
    with pytest.raises(ValueError, match="closed"):
        vw.write(frames(1)[0])


def test_a_tracking_video_takes_its_size_from_the_images_when_seqinfo_says_nothing(tmp_path):
    """Without seqinfo.ini (or with a wrong size in it) the frames were squashed to 640 x 480 while the
    boxes kept the images' pixel positions, beside the people."""
    from ros2_tracker.io.sequence import read_sequence_info
    from ros2_tracker.viz.sequence import FrameTracks, write_tracking_video

    (tmp_path / "img1").mkdir()
    for k, img in enumerate(frames(3, w=800, h=600), start=1):
        cv2.imwrite(str(tmp_path / "img1" / f"{k:06d}.jpg"), img)
    info = read_sequence_info(tmp_path)
    assert (info.width, info.height) == (0, 0) and info.has_images
    snaps = [FrameTracks(k, np.array([1]), np.array([[700.0, 500.0, 780.0, 590.0]]), np.array([1]))
             for k in (1, 2, 3)]
    video = write_tracking_video(tmp_path / "v.mp4", info, snaps)
    got, _fps = video_frames(video)
    assert len(got) == 3 and got[0].shape[:2] == (600, 800)
    assert got[0][540:560, 695:705].max() > 100  # the box's left edge, where the image has it
