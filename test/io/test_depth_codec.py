"""image_transport's compressedDepth format (``ros2_tracker.io.depth_codec``): what RGB-D robots record.

The RVL streams of the first tests were worked out by hand from the format (module docstring), nibble by
nibble; the PNG messages are built with OpenCV and the publisher's formulas, not with the module's encoder.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from conftest import png_claiming

from ros2_tracker.io.depth_codec import (
    DepthCodecError,
    decode_compressed_depth,
    encode_compressed_depth,
    is_compressed_depth,
    rvl_decode,
    rvl_encode,
)

# pixels -> the RVL stream's 32-bit words (little-endian bytes); each number in 3-bit groups, lowest first,
# 0x8 set on every group but its last, eight nibbles a word from the top
HAND_MADE = [
    # 2 zeros, 2 values: 5 (+5, zigzag 10 = groups 2, 1: nibbles A 1) and 6 (+1, zigzag 2), then 1 zero and
    # 0 values: nibbles 2 2 A 1 2 1 0, padded with a 0
    ([0, 0, 5, 6, 0], "0021a122"),
    # 0 zeros, 1 value: 9 (+9, zigzag 18 = groups 2, 2: nibbles A 2): 0 1 A 2, padding
    ([9], "0000a201"),
    # 0 zeros, 2 values: 5 (zigzag 10: A 1) and 3 (-2, zigzag 3: 3): 0 2 A 1 3, padding
    ([5, 3], "0030a102"),
]


@pytest.mark.parametrize(("pixels", "stream"), HAND_MADE)
def test_rvl_streams_worked_out_by_hand(pixels, stream):
    assert rvl_encode(np.array(pixels, np.uint16)).hex() == stream
    np.testing.assert_array_equal(rvl_decode(bytes.fromhex(stream), len(pixels)), pixels)


@pytest.mark.parametrize("holes", [0.0, 0.05, 0.5, 1.0])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (120, 160)])
def test_rvl_gives_back_any_image(shape, holes):
    rng = np.random.default_rng(len(shape) + int(holes * 100))
    mm = rng.integers(1, 65536, size=shape).astype(np.uint16)  # the largest jumps of either sign, too
    mm[rng.random(shape) < holes] = 0
    np.testing.assert_array_equal(rvl_decode(rvl_encode(mm), mm.size).reshape(shape), mm)


def test_a_cut_or_overrunning_rvl_stream_is_refused():
    mm = np.arange(1, 101, dtype=np.uint16)
    stream = rvl_encode(mm)
    with pytest.raises(DepthCodecError, match="ends inside a run of 100 values at pixel 0 of 100"):
        rvl_decode(stream[:4], 100)  # a count of 100 values, then few of them
    with pytest.raises(DepthCodecError, match="overruns"):
        rvl_decode(stream, 50)  # one run of 100 values in a 50-pixel image
    with pytest.raises(DepthCodecError, match="ends after 0 of 4 pixels"):
        rvl_decode(b"", 4)


def test_an_rvl_number_too_long_for_any_image_is_refused():
    # 23 groups with their continuation bit, then one without: a 72-bit count, which would wrap in 64 bits
    stream = struct.pack("<4I", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFF0, 0)
    with pytest.raises(DepthCodecError, match="runs over 24 nibbles"):
        rvl_decode(stream, 4)


def _header(a: float = 0.0, b: float = 0.0) -> bytes:
    return struct.pack("<iff", 0, a, b)


def _png(values: np.ndarray) -> bytes:
    return cv2.imencode(".png", values)[1].tobytes()


def test_a_16uc1_png_message_decodes_to_metres_with_holes_as_nan():
    mm = np.array([[0, 1500, 65535], [250, 0, 4321]], np.uint16)
    for fmt in ("16UC1; compressedDepth png", "16UC1; compressedDepth"):  # the older publishers' form: png
        got = decode_compressed_depth(fmt, _header() + _png(mm))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, [[np.nan, 1.5, 65.535], [0.25, np.nan, 4.321]], rtol=1e-6)


def test_a_32fc1_png_message_is_inverse_depth_read_back_within_its_quantisation():
    q, far = 100.0, 10.0  # the publisher's defaults: depth_quantization, depth_max
    a = np.float32(q * (q + 1))
    b = np.float32(1 - a / far)
    z = np.array([[0.5, 1.0, 2.5], [4.0, 9.9, np.nan]], np.float32)
    inverse = np.zeros(z.shape, np.uint16)
    ok = np.isfinite(z)
    inverse[ok] = (a / z[ok] + b).astype(np.uint16)  # as the publisher's float-to-ushort conversion
    got = decode_compressed_depth("32FC1; compressedDepth png", _header(float(a), float(b)) + _png(inverse))
    np.testing.assert_allclose(got[ok], z[ok], atol=0, rtol=z[ok].max() / a * 1.01)  # dz = z^2 / a
    assert np.isnan(got[~ok]).all()


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_the_encoder_writes_what_the_decoder_reads(codec):
    rng = np.random.default_rng(7)
    mm = rng.integers(300, 12000, size=(48, 64)).astype(np.uint16)
    mm[rng.random(mm.shape) < 0.1] = 0
    fmt, data = encode_compressed_depth(mm, "16UC1", codec)
    assert fmt == f"16UC1; compressedDepth {codec}" and is_compressed_depth(fmt)
    got = decode_compressed_depth(fmt, data)
    far = mm > 10000  # beyond the publisher's depth_max (10 m): dropped, as it drops them
    np.testing.assert_allclose(got[(mm > 0) & ~far], mm[(mm > 0) & ~far] / 1000.0, rtol=1e-6)
    assert np.isnan(got[(mm == 0) | far]).all()
    z = mm.astype(np.float32) / 1000
    z[mm == 0] = np.nan
    got = decode_compressed_depth(*encode_compressed_depth(z, "32FC1", codec))
    np.testing.assert_allclose(got[~far & (mm > 0)], z[~far & (mm > 0)], rtol=10.0 / 10100 * 1.01)
    assert np.isnan(got[far | (mm == 0)]).all()


@pytest.mark.parametrize(("fmt", "data", "message"), [
    ("bgr8; jpeg compressed bgr8", _header() + b"\x00" * 8, "is not compressedDepth"),
    ("8UC1; compressedDepth png", _header() + b"\x00" * 8, "encoding '8UC1' is not supported"),
    ("16UC1; compressedDepth zstd", _header() + b"\x00" * 8, "codec 'zstd' is not supported"),
    ("16UC1; compressedDepth png", b"\x00" * 12, "too short"),
    ("16UC1; compressedDepth png", _header() + b"not a png", "cannot decode the compressedDepth PNG"),
    ("16UC1; compressedDepth png", _header() + _png(np.zeros((4, 4), np.uint8)), "not one 16-bit channel"),
    # a header claiming 40000 x 40000 16-bit grey pixels: OpenCV raises cv2.error
    ("16UC1; compressedDepth png", _header() + png_claiming(40000, 40000, bit_depth=16, colour_type=0),
     "cannot decode the compressedDepth PNG .*CV_IO_MAX_IMAGE_PIXELS"),
    ("16UC1; compressedDepth rvl", _header() + b"\x01", "no room for its size"),
    ("16UC1; compressedDepth rvl", _header() + struct.pack("<II", 0, 5), "damaged size"),
    ("16UC1; compressedDepth rvl", _header() + struct.pack("<II", 1 << 20, 1 << 20), "damaged size"),
    ("16UC1; compressedDepth rvl", _header() + struct.pack("<II", 4, 4) + b"\x00" * 4, "ends after"),
])
def test_bad_messages_are_refused_with_the_reason(fmt, data, message):
    with pytest.raises(DepthCodecError, match=message):
        decode_compressed_depth(fmt, data)


def test_the_encoder_refuses_what_it_cannot_write():
    with pytest.raises(DepthCodecError, match="encoding must be one of"):
        encode_compressed_depth(np.zeros((2, 2), np.uint16), "mono8")
    with pytest.raises(DepthCodecError, match="2-D and not empty"):
        encode_compressed_depth(np.zeros((2, 2, 3), np.uint16))
