"""``io.video.read_image``: an image file that cannot be read is None, never an exception."""

import struct
import zlib

from ros2_tracker.io.video import read_image


def test_read_image_of_a_file_claiming_a_huge_size_is_none(tmp_path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "huge.png"  # 40000 x 40000 px by its header: OpenCV raises instead of returning None
    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 10)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
                     + chunk(b"IEND", b""))
    assert read_image(path) is None


def test_a_text_file_is_not_taken_for_a_video(tmp_path):
    """FFmpeg opens a text file (its tty demuxer renders the text as frames): refused by name instead, while a
    real video still opens."""
    import numpy as np
    import pytest

    from ros2_tracker.io.video import FrameSourceError, open_frame_source

    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,50,100,0.9,-1,-1,-1\n" * 50)
    with pytest.raises(FrameSourceError, match="a text file, not a video"):
        open_frame_source(det)
    cv2 = pytest.importorskip("cv2")
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(3):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    assert len([f for f in open_frame_source(video).frames() if f.image is not None]) == 3


def test_a_file_ffmpeg_opens_but_cannot_decode_is_refused_and_a_video_keeps_its_first_frame(tmp_path):
    """Random bytes named .png: FFmpeg's image demuxer "opens" them, and every frame was then missing (a
    warning, exit 0). The first frame is decoded when the video is opened; frames() still starts with it."""
    import numpy as np
    import pytest

    from ros2_tracker.io.video import FrameSourceError, open_frame_source

    cv2 = pytest.importorskip("cv2")
    fake = tmp_path / "fake.png"
    fake.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(FrameSourceError, match="cannot decode a frame"):
        open_frame_source(fake)
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(4):
        writer.write(np.full((48, 64, 3), 60 * k, np.uint8))
    writer.release()
    frames = list(open_frame_source(video).frames(max_frames=3))
    assert [f.number for f in frames] == [1, 2, 3]
    assert [round(float(np.median(f.image)) / 60) for f in frames] == [0, 1, 2]  # grey levels 0, 60, 120
