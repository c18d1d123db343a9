"""Image message <-> BGR array conversions, with the real sensor_msgs classes (no ROS graph needed)."""

from __future__ import annotations

import array
import importlib.util
import subprocess
import sys
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import png_claiming

from ros2_tracker.nodes.image_conversions import (
    DEPTH_ENCODINGS,
    IMAGE_ENCODINGS,
    ImageConversionError,
    bgr_to_compressed_msg,
    bgr_to_image_msg,
    compressed_msg_to_bgr,
    depth_msg_to_metres,
    depth_to_compressed_depth_msg,
    image_msg_to_bgr,
)

msg_module = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2 message wheels) not installed")
Image, CompressedImage = msg_module.Image, msg_module.CompressedImage
HAS_CV_BRIDGE = importlib.util.find_spec("cv_bridge") is not None
NO_CV_BRIDGE = "cv_bridge is not installed (it is not on PyPI; it comes with a ROS 2 distribution)"

BYTES_PER_PIXEL = {"bgr8": 3, "rgb8": 3, "bgra8": 4, "rgba8": 4, "mono8": 1, "mono16": 2}


def random_bgr(h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def grey_bgr(h=5, w=7, seed=1):
    g = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def raw_pixels(encoding, h=5, w=7, seed=2, big_endian=False):
    """(pixel bytes (h, row_bytes) for the encoding, the BGR image a decoder must return)."""
    rng = np.random.default_rng(seed)
    bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (h, w, 1), dtype=np.uint8)
    if encoding == "mono16":
        v = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        expected = np.floor(v.astype(np.float64) * 255.0 / 65535.0 + 0.5).astype(np.uint8)
        pix = v.astype(">u2" if big_endian else "<u2")
        return pix.view(np.uint8).reshape(h, -1), np.repeat(expected[:, :, None], 3, axis=2)
    if encoding == "mono8":
        return bgr[:, :, 0].copy(), np.repeat(bgr[:, :, :1], 3, axis=2)
    pix = {"bgr8": bgr, "rgb8": bgr[:, :, ::-1], "bgra8": np.concatenate([bgr, alpha], axis=2),
           "rgba8": np.concatenate([bgr[:, :, ::-1], alpha], axis=2)}[encoding]
    return np.ascontiguousarray(pix).reshape(h, -1), bgr


def packed_msg(encoding, pad=0, big_endian=False, h=5, w=7):
    rows, expected = raw_pixels(encoding, h, w, big_endian=big_endian)
    garbage = np.random.default_rng(3).integers(0, 256, (h, pad), dtype=np.uint8)
    padded = np.concatenate([rows, garbage], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big_endian), step=padded.shape[1])
    msg.data = array.array("B", padded.tobytes())
    return msg, expected


# --- decoding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("pad", [0, 1, 6])
@pytest.mark.parametrize("encoding", IMAGE_ENCODINGS)
def test_decodes_every_encoding_honouring_step(encoding, pad):
    msg, expected = packed_msg(encoding, pad)
    out = image_msg_to_bgr(msg)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


def test_mono16_honours_byte_order():
    little, expected = packed_msg("mono16", pad=2, big_endian=False)
    big, expected_big = packed_msg("mono16", pad=2, big_endian=True)
    assert bytes(little.data) != bytes(big.data)
    np.testing.assert_array_equal(image_msg_to_bgr(little), expected)
    np.testing.assert_array_equal(image_msg_to_bgr(big), expected_big)
    np.testing.assert_array_equal(expected, expected_big)


def test_mono16_scaling_rounds_every_value_like_cv_bridge():
    v = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    msg = Image(height=256, width=256, encoding="mono16", is_bigendian=0, step=512)
    msg.data = array.array("B", v.astype("<u2").tobytes())
    out = image_msg_to_bgr(msg)
    expected = np.floor(v.astype(np.float64) * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[:, :, 0], expected)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_decoded_image_owns_its_memory():
    msg, _ = packed_msg("bgr8")
    out = image_msg_to_bgr(msg)
    before = out.copy()
    msg.data[0] ^= 0xFF  # changing the message must not change the array
    np.testing.assert_array_equal(out, before)
    out[0, 0, 0] ^= 0xFF  # and the array is writable


def test_duck_typed_message_with_list_data():
    rows, expected = raw_pixels("rgb8", 2, 3)
    msg = SimpleNamespace(height=2, width=3, encoding="rgb8", is_bigendian=0, step=9,
                          data=rows.reshape(-1).tolist())
    np.testing.assert_array_equal(image_msg_to_bgr(msg, backend="numpy"), expected)
    msg.data = bytes(rows.reshape(-1))
    np.testing.assert_array_equal(image_msg_to_bgr(msg, backend="numpy"), expected)


@pytest.mark.parametrize(("change", "message"), [
    ({"encoding": "yuv422"}, "unsupported image encoding 'yuv422'; supported: bgr8, rgb8"),
    ({"encoding": "8UC3"}, "unsupported image encoding"),
    ({"height": 0}, "zero size"),
    ({"width": 0}, "zero size"),
    ({"step": 20}, r"step=20 bytes is shorter than a row of 7 bgr8 pixels \(21 bytes\)"),
    ({"step": 22}, r"data has 105 bytes, expected step \* height = 22 \* 5 = 110"),
    ({"height": 6}, r"data has 105 bytes, expected"),
])
def test_inconsistent_messages_are_clear_errors(change, message):
    msg, _ = packed_msg("bgr8")
    for k, v in change.items():
        setattr(msg, k, v)
    with pytest.raises(ImageConversionError, match=message):
        image_msg_to_bgr(msg)


def test_truncated_and_overlong_data_are_errors():
    msg, _ = packed_msg("mono16", pad=1)
    full = bytes(msg.data)
    for data in (full[:-1], full + b"\x00", b""):
        msg.data = array.array("B", data)
        with pytest.raises(ImageConversionError, match="data has"):
            image_msg_to_bgr(msg)
    bad = SimpleNamespace(height=1, width=1, encoding="mono8", is_bigendian=0, step=1, data=[300])
    with pytest.raises(ImageConversionError, match="not a sequence of bytes"):
        image_msg_to_bgr(bad)


def test_backend_is_validated():
    msg, _ = packed_msg("bgr8")
    with pytest.raises(ValueError, match="backend"):
        image_msg_to_bgr(msg, backend="pil")
    if not HAS_CV_BRIDGE:
        with pytest.raises(ImportError):
            image_msg_to_bgr(msg, backend="cv_bridge")


# --- encoding -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", IMAGE_ENCODINGS)
def test_encode_decode_round_trip(encoding):
    image = grey_bgr() if encoding.startswith("mono") else random_bgr()
    msg = bgr_to_image_msg(image, Image, encoding)
    assert isinstance(msg, Image) and msg.encoding == encoding
    assert (msg.height, msg.width) == (5, 7) and msg.step == 7 * BYTES_PER_PIXEL[encoding]
    assert isinstance(msg.data, array.array) and len(msg.data) == msg.step * msg.height
    assert msg.is_bigendian == int(sys.byteorder == "big")
    np.testing.assert_array_equal(image_msg_to_bgr(msg), image)


def test_encoded_bytes_follow_the_encoding():
    image = random_bgr()
    assert bytes(bgr_to_image_msg(image, Image, "rgb8").data) == image[:, :, ::-1].tobytes()
    bgra = np.frombuffer(bytes(bgr_to_image_msg(image, Image, "bgra8").data), np.uint8).reshape(5, 7, 4)
    np.testing.assert_array_equal(bgra[:, :, :3], image)
    assert (bgra[:, :, 3] == 255).all()
    grey = grey_bgr()[:, :, 0]
    mono16 = np.frombuffer(bytes(bgr_to_image_msg(grey, Image, "mono16").data), np.uint16).reshape(5, 7)
    np.testing.assert_array_equal(mono16, grey.astype(np.uint16) * 257)  # 255 -> 65535, as cv_bridge
    mono8 = np.frombuffer(bytes(bgr_to_image_msg(image, Image, "mono8").data), np.uint8).reshape(5, 7)
    np.testing.assert_array_equal(mono8, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def test_header_is_copied():
    from std_msgs.msg import Header

    msg = bgr_to_image_msg(random_bgr(), Image, header=Header(frame_id="camera"))
    assert msg.header.frame_id == "camera"
    compressed = bgr_to_compressed_msg(random_bgr(), CompressedImage, header=Header(frame_id="c"))
    assert compressed.header.frame_id == "c"


@pytest.mark.parametrize(("image", "encoding", "message"), [
    (np.zeros((4, 4, 3), np.float32), "bgr8", "uint8"),
    (np.zeros((4, 4, 4), np.uint8), "bgr8", r"shape \(H, W, 3\)"),
    (np.zeros((0, 4, 3), np.uint8), "bgr8", "empty"),
    (np.zeros((4, 4, 3), np.uint8), "yuv422", "unsupported encoding"),
])
def test_encoding_rejects_bad_input(image, encoding, message):
    with pytest.raises(ImageConversionError, match=message):
        bgr_to_image_msg(image, Image, encoding)


def test_full_hd_conversion_is_a_buffer_copy_not_per_element():
    image = random_bgr(1080, 1920)
    t0 = time.perf_counter()
    msg = bgr_to_image_msg(image, Image)
    out = image_msg_to_bgr(msg)
    elapsed = time.perf_counter() - t0
    np.testing.assert_array_equal(out, image)
    assert elapsed < 0.5, f"{elapsed:.3f} s for a 1080p round trip: data is being copied per element"


def test_message_survives_rclpy_serialization(monkeypatch, tmp_path):
    serialization = pytest.importorskip("rclpy.serialization", reason="rclpy not installed")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    image = random_bgr(6, 9)
    for encoding in ("rgb8", "mono16"):
        expected = grey_bgr(6, 9) if encoding == "mono16" else image
        wire = serialization.serialize_message(bgr_to_image_msg(expected, Image, encoding))
        back = serialization.deserialize_message(wire, Image)
        np.testing.assert_array_equal(image_msg_to_bgr(back), expected)


# --- compressed ---------------------------------------------------------------------------------------

def smooth_bgr(h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], axis=2).astype(np.uint8)


def test_jpeg_round_trip():
    image = smooth_bgr()
    msg = bgr_to_compressed_msg(image, CompressedImage, "jpeg", jpeg_quality=95)
    assert isinstance(msg, CompressedImage) and msg.format == "bgr8; jpeg compressed bgr8"
    assert isinstance(msg.data, array.array) and bytes(msg.data[:2]) == b"\xff\xd8"  # JPEG SOI marker
    out = compressed_msg_to_bgr(msg)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image).mean() < 2.0


def test_png_round_trip_is_exact_including_grey():
    image = random_bgr(9, 11)
    msg = bgr_to_compressed_msg(image, CompressedImage, "png")
    assert msg.format == "bgr8; png compressed bgr8" and bytes(msg.data[1:4]) == b"PNG"
    np.testing.assert_array_equal(compressed_msg_to_bgr(msg), image)
    grey = image[:, :, 1]
    msg = bgr_to_compressed_msg(grey, CompressedImage, "png")
    assert msg.format == "mono8; png compressed mono8"
    np.testing.assert_array_equal(compressed_msg_to_bgr(msg), np.repeat(grey[:, :, None], 3, axis=2))


def test_rgb8_compressed_payload_is_swapped_back():
    image = random_bgr(4, 4)
    msg = bgr_to_compressed_msg(image[:, :, ::-1], CompressedImage, "png")
    msg.format = "rgb8; png compressed rgb8"
    np.testing.assert_array_equal(compressed_msg_to_bgr(msg), image)


@pytest.mark.parametrize(("data", "fmt", "message"), [
    (b"this is not an image at all", "jpeg", "cannot decode the compressed image"),
    (png_claiming(40000, 40000), "png", "cannot decode the compressed image"),  # OpenCV raised cv2.error
    (b"\xff\xd8\xff\xe0garbage after a JPEG header", "jpeg", "cannot decode"),
    (b"", "png", "no data"),
    (b"\x00" * 20, "16UC1; compressedDepth png", "is a depth image, not a picture"),
])
def test_garbage_compressed_data_is_a_clear_error(data, fmt, message):
    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    with pytest.raises(ImageConversionError, match=message):
        compressed_msg_to_bgr(msg)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fmt": "bmp"}, "unsupported compressed format"),
    ({"jpeg_quality": 0}, "jpeg_quality"),
    ({"png_level": 10}, "png_level"),
])
def test_compression_rejects_bad_options(kwargs, message):
    with pytest.raises(ImageConversionError, match=message):
        bgr_to_compressed_msg(random_bgr(), CompressedImage, **kwargs)


# --- module boundary and cv_bridge parity --------------------------------------------------------------

def test_module_imports_without_ros():
    code = ("import sys, ros2_tracker.nodes.image_conversions; "
            "sys.exit(int(any(m in sys.modules for m in ('rclpy', 'sensor_msgs', 'cv_bridge'))))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


@pytest.mark.skipif(not HAS_CV_BRIDGE, reason=NO_CV_BRIDGE)
@pytest.mark.parametrize("encoding", IMAGE_ENCODINGS)
def test_cv_bridge_and_numpy_paths_give_identical_arrays(encoding):
    for pad in (0, 2 * BYTES_PER_PIXEL[encoding]):
        for big_endian in ((False, True) if encoding == "mono16" else (False,)):
            msg, expected = packed_msg(encoding, pad, big_endian)
            via_bridge = image_msg_to_bgr(msg, backend="cv_bridge")
            np.testing.assert_array_equal(via_bridge, image_msg_to_bgr(msg, backend="numpy"))
            np.testing.assert_array_equal(via_bridge, expected)
    from cv_bridge import CvBridge  # our encoder's messages read back identically through cv_bridge

    image = grey_bgr() if encoding.startswith("mono") else random_bgr()
    msg = bgr_to_image_msg(image, Image, encoding)
    np.testing.assert_array_equal(CvBridge().imgmsg_to_cv2(msg, desired_encoding="bgr8"), image)


def test_an_exif_orientation_tag_is_not_applied(tmp_path):
    """Boxes refer to the stored pixels (image_transport and cv_bridge decode without EXIF): a JPEG tagged
    "rotate 90°" was turned, and the detector's boxes came out in the turned frame."""
    import io

    from PIL import Image as PILImage

    from ros2_tracker.io.video import read_image

    stored = np.zeros((40, 60, 3), dtype=np.uint8)
    stored[:, :20] = (0, 0, 255)  # a red left third (BGR)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    buf = io.BytesIO()
    PILImage.fromarray(stored[:, :, ::-1]).save(buf, format="JPEG", exif=exif, quality=95)
    msg = SimpleNamespace(format="bgr8; jpeg compressed bgr8", data=buf.getvalue())
    (tmp_path / "f.jpg").write_bytes(buf.getvalue())
    for image in (compressed_msg_to_bgr(msg), read_image(tmp_path / "f.jpg")):
        assert image.shape == (40, 60, 3)
        assert image[20, 5, 2] > 200 and image[20, 55, 2] < 60  # red stays on the left


def depth_msg(values: np.ndarray, encoding: str, *, big_endian: bool = False, pad: int = 0):
    """A depth Image of ``values`` (H, W) in ``encoding``'s type and byte order, each row padded by ``pad``
    bytes."""
    kind = {"16UC1": "u2", "32FC1": "f4"}[encoding]
    raw = np.ascontiguousarray(values.astype(f"{'>' if big_endian else '<'}{kind}")).view(np.uint8)
    rows = np.concatenate([raw.reshape(values.shape[0], -1),
                           np.full((values.shape[0], pad), 0xAB, dtype=np.uint8)], axis=1)
    return Image(height=values.shape[0], width=values.shape[1], encoding=encoding, is_bigendian=big_endian,
                 step=rows.shape[1], data=array.array("B", rows.tobytes()))


@pytest.mark.parametrize("big_endian", [False, True], ids=["little_endian", "big_endian"])
@pytest.mark.parametrize("pad", [0, 3])
def test_depth_images_decode_to_metres_with_no_depth_as_nan(big_endian, pad):
    """REP 118: 16UC1 in millimetres with 0 for no depth, 32FC1 in metres; any padding and byte order."""
    mm = np.array([[0, 1, 1500], [65535, 3000, 0]], dtype=np.uint16)
    got = depth_msg_to_metres(depth_msg(mm, "16UC1", big_endian=big_endian, pad=pad))
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_allclose(got, [[np.nan, 0.001, 1.5], [65.535, 3.0, np.nan]], rtol=1e-6)
    m = np.array([[1.25, np.nan, np.inf], [0.0, -2.0, 7.5]], dtype=np.float32)
    got = depth_msg_to_metres(depth_msg(m, "32FC1", big_endian=big_endian, pad=pad))
    np.testing.assert_array_equal(got, np.array([[1.25, np.nan, np.nan], [np.nan, np.nan, 7.5]], np.float32))
    assert set(DEPTH_ENCODINGS) == {"16UC1", "32FC1"}


def test_a_colour_or_malformed_image_on_the_depth_topic_is_refused_with_the_reason():
    with pytest.raises(ImageConversionError,
                       match="unsupported depth image encoding 'bgr8'; supported: 16UC1, 32FC1"):
        depth_msg_to_metres(bgr_to_image_msg(random_bgr(), Image, "bgr8"))
    short = depth_msg(np.ones((4, 5), np.uint16), "16UC1")
    short.data = short.data[:-1]
    with pytest.raises(ImageConversionError, match="data has 39 bytes, expected step \\* height = 10 \\* 4"):
        depth_msg_to_metres(short)
    narrow = depth_msg(np.ones((4, 5), np.float32), "32FC1")
    narrow.step = 19
    with pytest.raises(ImageConversionError, match="step=19 bytes is shorter than a row"):
        depth_msg_to_metres(narrow)
    with pytest.raises(ImageConversionError, match="zero size"):
        depth_msg_to_metres(Image(height=0, width=5, encoding="16UC1", step=10))


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_compressed_depth_messages_decode_to_metres(codec):
    """image_transport's compressedDepth, as RGB-D robots record it: the real CompressedImage class, its
    data field as rclpy hands it over (a serialisation round trip)."""
    from rclpy.serialization import deserialize_message, serialize_message

    mm = np.array([[0, 1500, 2000], [9999, 4321, 0]], dtype=np.uint16)
    msg = depth_to_compressed_depth_msg(mm, CompressedImage, "16UC1", codec)
    assert msg.format == f"16UC1; compressedDepth {codec}"
    msg = deserialize_message(serialize_message(msg), CompressedImage)
    got = depth_msg_to_metres(msg)
    np.testing.assert_allclose(got, [[np.nan, 1.5, 2.0], [9.999, 4.321, np.nan]], rtol=1e-6)
    z = mm / np.float32(1000)
    got = depth_msg_to_metres(depth_to_compressed_depth_msg(z, CompressedImage, "32FC1", codec))
    np.testing.assert_allclose(got[mm > 0], z[mm > 0], rtol=1e-3)  # inverse depth, quantised
    assert np.isnan(got[mm == 0]).all()


def test_a_picture_or_damaged_data_on_the_compressed_depth_topic_is_refused_with_the_reason():
    jpeg = bgr_to_compressed_msg(random_bgr(), CompressedImage, "jpeg")
    with pytest.raises(ImageConversionError, match="compressed format 'bgr8; jpeg compressed bgr8' is not a "
                                                   "depth image"):
        depth_msg_to_metres(jpeg)
    damaged = depth_to_compressed_depth_msg(np.ones((8, 8), np.uint16), CompressedImage, "16UC1", "png")
    damaged.data = damaged.data[:30]
    with pytest.raises(ImageConversionError, match="cannot decode the compressedDepth PNG"):
        depth_msg_to_metres(damaged)
    with pytest.raises(ImageConversionError, match="encoding must be one of 16UC1, 32FC1"):
        depth_to_compressed_depth_msg(np.ones((8, 8)), CompressedImage, "mono16")
    with pytest.raises(ImageConversionError, match="is a depth image, not a picture"):
        compressed_msg_to_bgr(depth_to_compressed_depth_msg(np.ones((8, 8), np.uint16), CompressedImage))
