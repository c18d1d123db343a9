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
