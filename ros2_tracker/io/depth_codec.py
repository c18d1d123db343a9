"""The ``compressedDepth`` format of ROS image_transport (compressed_depth_image_transport), read and written
without ROS: how RGB-D robots record their depth streams to save space.

A ``sensor_msgs/CompressedImage`` in this format has ``format`` ``"<encoding>; compressedDepth <codec>"``
(encoding ``16UC1`` or ``32FC1``; codec ``png`` or ``rvl``; older publishers write only
``"<encoding>; compressedDepth"``, which means png). Its ``data`` is a 12-byte header (int32 format, 0 for
the only one there is, and two float32 quantisation parameters A and B) followed by

- ``png``: a 16-bit single-channel PNG;
- ``rvl``: uint32 width and height, then the RVL stream (A. D. Wilson, "Fast Lossless Depth Image
  Compression", ISS 2017): runs of zeros and of non-zero values, each non-zero value as the zigzag-coded
  difference to the previous one, every number in 3-bit groups with a continuation bit (4-bit nibbles,
  lowest group first), eight nibbles to a 32-bit word, the first in its most significant bits.

A ``16UC1`` image's values are millimetres. A ``32FC1`` image is stored as quantised inverse depth
``v = A / z + B`` (``A = q (q + 1)``, ``B = 1 - A / max`` for the publisher's ``depth_quantization`` q and
``depth_max``), read back as ``z = A / (v - B)``. In both, 0 means no depth. The header and the RVL words are
in the publisher's byte order: little-endian on every machine ROS 2 runs on (x86-64, ARM64), read so here.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

__all__ = [
    "DepthCodecError",
    "decode_compressed_depth",
    "encode_compressed_depth",
    "is_compressed_depth",
    "rvl_decode",
    "rvl_encode",
]

_HEADER = struct.Struct("<iff")  # format, depthQuantA, depthQuantB
_SIZE = struct.Struct("<II")  # RVL: width, height
ENCODINGS = ("16UC1", "32FC1")
CODECS = ("png", "rvl")
_MAX_PIXELS = 1 << 28  # a depth image claiming more (16384 x 16384) is damaged
_MAX_NIBBLES = 10  # 30 bits: any run count of such an image; a difference needs 6


class DepthCodecError(ValueError):
    """A compressedDepth message cannot be read or written; the message says why."""


def is_compressed_depth(fmt: str) -> bool:
    """Whether a CompressedImage ``format`` names the compressedDepth transport."""
    return "compresseddepth" in fmt.replace(" ", "").lower()


def _parse_format(fmt: str) -> tuple[str, str]:
    """(encoding, codec) of a compressedDepth ``format``."""
    encoding, _, rest = fmt.partition(";")
    encoding = encoding.strip()
    if not is_compressed_depth(rest):
        raise DepthCodecError(f"format {fmt!r} is not compressedDepth (expected '<encoding>; compressedDepth "
                              f"<codec>')")
    words = rest.split()
    codec = words[words.index("compressedDepth") + 1] if words[-1] != "compressedDepth" and \
        "compressedDepth" in words else "png"
    if encoding not in ENCODINGS:
        raise DepthCodecError(f"compressedDepth encoding {encoding!r} is not supported; supported: "
                              f"{', '.join(ENCODINGS)}")
    if codec not in CODECS:
        raise DepthCodecError(f"compressedDepth codec {codec!r} is not supported; supported: "
                              f"{', '.join(CODECS)}")
    return encoding, codec


def decode_compressed_depth(fmt: str, data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """The depth image of a compressedDepth message as a new ``(H, W)`` float32 array of metres, NaN where
    there is no depth (0 in the image, or a non-finite or non-positive decoded value).

    Raises:
        DepthCodecError: another format, an encoding or codec not supported, data too short for its header
            or not decodable (a damaged PNG, an RVL stream that ends early or overruns its size).
    """
    encoding, codec = _parse_format(fmt)
    raw = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if raw.size <= _HEADER.size:
        raise DepthCodecError(f"compressedDepth data of {raw.size} bytes: too short for its "
                              f"{_HEADER.size}-byte header and an image")
    _, quant_a, quant_b = _HEADER.unpack(raw[: _HEADER.size].tobytes())
    body = raw[_HEADER.size:]
    values = _decode_png(body) if codec == "png" else _decode_rvl_image(body)
    if encoding == "16UC1":
        metres = values.astype(np.float32) * np.float32(1e-3)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            metres = np.float32(quant_a) / (values.astype(np.float32) - np.float32(quant_b))
        metres[values == 0] = np.nan
    metres[~(metres > 0) | ~np.isfinite(metres)] = np.nan
    return metres


def _decode_png(body: np.ndarray) -> np.ndarray:
    try:
        image = cv2.imdecode(body, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. a header claiming more pixels than CV_IO_MAX_IMAGE_PIXELS (2**30)
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
        raise DepthCodecError(f"cannot decode the compressedDepth PNG ({body.size} bytes): "
                              f"{detail}") from None
    if image is None:
        raise DepthCodecError(f"cannot decode the compressedDepth PNG ({body.size} bytes)")
    if image.ndim != 2 or image.dtype != np.uint16:
        raise DepthCodecError(f"compressedDepth PNG holds a {image.dtype} image of shape {image.shape}, "
                              "not one 16-bit channel")
    return image


def _decode_rvl_image(body: np.ndarray) -> np.ndarray:
    if body.size < _SIZE.size:
        raise DepthCodecError(f"compressedDepth RVL data of {body.size} bytes: no room for its size")
    width, height = _SIZE.unpack(body[: _SIZE.size].tobytes())
    if width == 0 or height == 0 or width * height > _MAX_PIXELS:
        raise DepthCodecError(f"compressedDepth RVL image of {width} x {height} pixels: damaged size")
    return rvl_decode(body[_SIZE.size:], width * height).reshape(height, width)


def rvl_decode(stream: bytes | np.ndarray, num_pixels: int) -> np.ndarray:
    """The ``num_pixels`` uint16 values of an RVL stream (module docstring).

    Raises:
        DepthCodecError: the stream ends before ``num_pixels`` values, or a run overruns them.
    """
    raw = np.frombuffer(stream, dtype=np.uint8) if not isinstance(stream, np.ndarray) else stream
    # the nibbles in stream order: each little-endian word read from its most significant nibble down
    by = raw[: raw.size - raw.size % 4].reshape(-1, 4)[:, ::-1].ravel()
    nibbles = np.empty(2 * by.size, dtype=np.uint8)
    nibbles[0::2], nibbles[1::2] = by >> 4, by & 0xF
    ends = np.flatnonzero(nibbles < 0x8)  # the nibble that ends each number (no continuation bit)
    starts = np.concatenate(([0], ends[:-1] + 1))[: ends.size]
    size = ends - starts + 1
    if size.max(initial=0) > _MAX_NIBBLES:
        at = int(np.argmax(size > _MAX_NIBBLES))
        raise DepthCodecError(f"RVL number {at} runs over {size[at]} nibbles (at most {_MAX_NIBBLES}: a run "
                              f"count below 2**30): damaged stream")
    numbers = (nibbles[starts] & 0x7).astype(np.int64)
    longer, k = np.flatnonzero(size > 1), 1
    while longer.size:  # the further 3-bit groups of the longer numbers
        numbers[longer] += (nibbles[starts[longer] + k] & 0x7).astype(np.int64) << (3 * k)
        k += 1
        longer = longer[size[longer] > k]
    # the runs: a count of zeros, a count of non-zero values, then that many differences; the walk from
    # pair to pair is sequential (one Python step per pair: a depth image has a few thousand), read through a
    # memoryview, which gives Python ints without converting the whole array as tolist() would
    counts_of = memoryview(numbers)
    heads: list[int] = []  # where each pair of runs starts in ``numbers``
    filled = p = 0
    try:
        while filled < num_pixels:
            heads.append(p)
            filled += counts_of[p] + counts_of[p + 1]
            p += 2 + counts_of[p + 1]
    except IndexError:
        raise DepthCodecError(f"RVL stream ends after {filled} of {num_pixels} pixels") from None
    at_head = np.array(heads, dtype=np.int64)
    zeros, counts = numbers[at_head], numbers[at_head + 1]
    if filled > num_pixels:
        raise DepthCodecError(f"RVL run of {zeros[-1]} + {counts[-1]} pixels at pixel "
                              f"{filled - zeros[-1] - counts[-1]} overruns the {num_pixels}-pixel image")
    if p > numbers.size:
        raise DepthCodecError(f"RVL stream ends inside a run of {counts[-1]} values at pixel "
                              f"{filled - counts[-1]} of {num_pixels}")
    at = np.repeat(at_head + 2 - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
    zigzag = numbers[at]
    out = np.zeros(num_pixels, dtype=np.uint16)
    is_value = np.repeat(np.tile([False, True], len(heads)), np.column_stack((zeros, counts)).ravel())
    out[is_value] = (np.cumsum((zigzag >> 1) ^ -(zigzag & 1)) & 0xFFFF).astype(np.uint16)
    return out


def rvl_encode(values: np.ndarray) -> bytes:
    """The RVL stream of a uint16 array read in C order (module docstring); :func:`rvl_decode` reads it
    back."""
    flat = np.ascontiguousarray(values, dtype=np.uint16).ravel()
    if flat.size == 0:
        return b""
    nonzero = flat != 0
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(nonzero.astype(np.int8))) + 1, [flat.size]))
    spans = np.diff(bounds)
    if nonzero[0]:  # pairs of runs start with the zeros, even none
        spans = np.concatenate(([0], spans))
    if spans.size % 2:  # and end with the values, even none
        spans = np.concatenate((spans, [0]))
    zeros, counts = spans[0::2], spans[1::2]
    diffs = np.diff(flat[nonzero].astype(np.int64), prepend=0)
    numbers = np.empty(2 * zeros.size + diffs.size, dtype=np.int64)
    heads = 2 * np.arange(zeros.size) + np.cumsum(counts) - counts
    numbers[heads], numbers[heads + 1] = zeros, counts
    rest = np.ones(numbers.size, dtype=bool)
    rest[heads], rest[heads + 1] = False, False
    numbers[rest] = (diffs << 1) ^ (diffs >> 63)  # zigzag: small differences of either sign, small numbers
    bits = np.zeros_like(numbers)
    positive = numbers > 0
    bits[positive] = np.floor(np.log2(numbers[positive])).astype(np.int64) + 1
    size = np.maximum(1, (bits + 2) // 3)  # 3-bit groups per number
    group = np.repeat(np.arange(numbers.size), size)
    place = np.arange(group.size) - np.repeat(np.cumsum(size) - size, size)
    nibbles = ((numbers[group] >> (3 * place)) & 0x7) | np.where(place < size[group] - 1, 0x8, 0)
    nibbles = np.concatenate((nibbles, np.zeros(-nibbles.size % 8, dtype=np.int64)))
    return (nibbles.reshape(-1, 8) << np.arange(28, -1, -4)).sum(axis=1).astype("<u4").tobytes()


def encode_compressed_depth(depth: np.ndarray, encoding: str = "16UC1", codec: str = "png", *,
                            depth_max: float = 10.0, depth_quantization: float = 100.0,
                            png_level: int = 1) -> tuple[str, bytes]:
    """``(format, data)`` of a compressedDepth message for a depth image, as compressed_depth_image_transport
    writes it (its defaults: ``depth_max`` 10 m, ``depth_quantization`` 100).

    Args:
        depth: ``(H, W)`` uint16 millimetres for ``16UC1`` (values above ``depth_max`` become 0), float
            metres for ``32FC1`` (NaN, non-positive and from ``depth_max`` on become 0).
        encoding: ``16UC1`` or ``32FC1``.
        codec: ``png`` or ``rvl``.
        depth_max: farther depths are stored as 0 (no depth) [m].
        depth_quantization: ``32FC1``: the quantisation q of the inverse depth (module docstring) [m].
        png_level: the PNG compression level, 0..9.

    Raises:
        DepthCodecError: another encoding or codec, or an image that is not 2-D.
    """
    if encoding not in ENCODINGS or codec not in CODECS:
        raise DepthCodecError(f"encoding must be one of {', '.join(ENCODINGS)} and codec one of "
                              f"{', '.join(CODECS)}, got {encoding!r} / {codec!r}")
    if depth.ndim != 2 or depth.size == 0:
        raise DepthCodecError(f"a depth image must be 2-D and not empty, got shape {depth.shape}")
    quant_a = quant_b = 0.0
    if encoding == "16UC1":
        values = np.asarray(depth, dtype=np.uint16).copy()
        values[values > np.uint16(min(depth_max * 1000.0, 65535))] = 0
    else:
        quant_a = float(np.float32(depth_quantization * (depth_quantization + 1.0)))
        quant_b = float(np.float32(1.0 - quant_a / depth_max))
        z = np.asarray(depth, dtype=np.float32)
        ok = np.isfinite(z) & (z > 0) & (z < depth_max)
        inverse = np.zeros(z.shape, dtype=np.float64)
        inverse[ok] = np.float32(quant_a) / z[ok] + np.float32(quant_b)
        values = np.clip(inverse, 0, 65535).astype(np.uint16)
    if codec == "png":
        ok_png, encoded = cv2.imencode(".png", values, [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
        if not ok_png:
            raise DepthCodecError("OpenCV could not encode the depth image as PNG")
        body = encoded.tobytes()
    else:
        body = _SIZE.pack(values.shape[1], values.shape[0]) + rvl_encode(values)
    return f"{encoding}; compressedDepth {codec}", _HEADER.pack(0, quant_a, quant_b) + body
