"""Pure conversions between ``sensor_msgs/Image`` / ``CompressedImage`` messages and BGR numpy images.

No ROS import at module level: the functions read messages by attribute (``height``, ``width``,
``encoding``, ``is_bigendian``, ``step``, ``data``; ``format`` and ``data`` for compressed images)
and build messages from a class passed in (e.g. ``sensor_msgs.msg.Image``), so they are tested without
a running ROS graph and the module imports without rclpy.

Decoding (:func:`image_msg_to_bgr`) supports rgb8, bgr8, mono8, bgra8, rgba8 and mono16 with any row
padding (``step``) and either byte order. The conversions are the ones cv_bridge applies for
``desired_encoding='bgr8'`` (ROS 2 cv_bridge's ``cvtColor``): channel reordering, alpha dropped,
grey replicated, and mono16 scaled to 8 bits as ``saturate(round(v * 255 / 65535))`` by OpenCV's
``convertTo``. When cv_bridge is importable (a real ROS 2 install) and the row padding is a whole
number of pixels (cv_bridge's Python reader computes the row length as ``int(step / pixel size)``
and misreads other paddings), decoding goes through cv_bridge; otherwise through numpy/OpenCV. Both
paths give identical arrays (``test/nodes/test_image_conversions.py`` checks this where cv_bridge
exists; it cannot be installed from PyPI, so the check skips here).

Encoding always uses numpy/OpenCV: cv_bridge would only copy the bytes. Message ``data`` fields are
filled with one ``array.array('B')`` buffer copy (rclpy's generated setters accept it without a
per-element check), never element by element.
"""

from __future__ import annotations

import array
import sys
from typing import Any

import cv2
import numpy as np

from ros2_tracker.io.depth_codec import (
    DepthCodecError,
    decode_compressed_depth,
    encode_compressed_depth,
    is_compressed_depth,
)

__all__ = [
    "DEPTH_ENCODINGS",
    "IMAGE_ENCODINGS",
    "ImageConversionError",
    "bgr_to_compressed_msg",
    "bgr_to_image_msg",
    "compressed_msg_to_bgr",
    "depth_msg_to_metres",
    "depth_to_compressed_depth_msg",
    "image_msg_to_bgr",
]

# encoding -> (channels, bytes per channel)
_LAYOUT = {
    "bgr8": (3, 1),
    "rgb8": (3, 1),
    "bgra8": (4, 1),
    "rgba8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
}
IMAGE_ENCODINGS = tuple(_LAYOUT)
"""Encodings that :func:`image_msg_to_bgr` reads and :func:`bgr_to_image_msg` writes."""
# depth encodings (REP 118) -> (channels, bytes per channel, metres per unit)
_DEPTH_LAYOUT = {
    "16UC1": (1, 2, 1e-3),  # millimetres, 0 = no depth
    "32FC1": (1, 4, 1.0),  # metres, NaN (or 0) = no depth
}
DEPTH_ENCODINGS = tuple(_DEPTH_LAYOUT)
"""Encodings that :func:`depth_msg_to_metres` reads."""

_FROM_BGR = {"rgb8": cv2.COLOR_BGR2RGB, "bgra8": cv2.COLOR_BGR2BGRA, "rgba8": cv2.COLOR_BGR2RGBA}
_BACKENDS = ("auto", "numpy", "cv_bridge")
_COMPRESSED_FORMATS = {"jpeg": ".jpg", "png": ".png"}


class ImageConversionError(ValueError):
    """A message or array cannot be converted; the message says which field is wrong and why."""


def image_msg_to_bgr(msg: Any, *, backend: str = "auto") -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` into a new ``(H, W, 3)`` uint8 BGR array (owning its memory).

    Args:
        msg: an object with ``height``, ``width``, ``encoding``, ``is_bigendian``, ``step`` [bytes per
            row, padding included] and ``data`` (bytes-like, ``array.array('B')``, uint8 array or a list
            of ints) of exactly ``step * height`` bytes.
        backend: ``"auto"`` (cv_bridge when importable and usable, else numpy), ``"numpy"`` or
            ``"cv_bridge"`` (raises :class:`ImportError` when cv_bridge is missing).

    Raises:
        ImageConversionError: unsupported encoding, zero height or width, ``step`` shorter than a
            row, or ``data`` whose length is not ``step * height``.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}")
    encoding, height, width, step, data = _checked_layout(msg)
    channels, depth = _LAYOUT[encoding]
    if backend != "numpy" and step % (channels * depth) == 0:
        bridge = _cv_bridge(required=backend == "cv_bridge")
        if bridge is not None:
            return _decode_with_cv_bridge(bridge, msg)
    elif backend == "cv_bridge":
        raise ImageConversionError(f"cv_bridge cannot read step={step}: not a whole number of "
                                   f"{channels * depth}-byte pixels")
    rows = data.reshape(height, step)[:, : width * channels * depth]
    if depth == 2:
        order = ">" if msg.is_bigendian else "<"
        pixels = np.ascontiguousarray(rows).view(f"{order}u2").astype(np.uint16).reshape(height, width)
        # OpenCV's convertTo with scale 255/65535, rounding half to even, as cv_bridge does
        return cv2.cvtColor(cv2.convertScaleAbs(pixels, alpha=255.0 / 65535.0), cv2.COLOR_GRAY2BGR)
    pixels = rows.reshape(height, width, channels)
    if encoding == "bgr8":
        return pixels.copy()
    if encoding == "rgb8":
        return np.ascontiguousarray(pixels[:, :, ::-1])
    if encoding == "bgra8":
        return np.ascontiguousarray(pixels[:, :, :3])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return cv2.cvtColor(np.ascontiguousarray(pixels[:, :, 0]), cv2.COLOR_GRAY2BGR)  # mono8


def depth_msg_to_metres(msg: Any) -> np.ndarray:
    """Decode a depth ``sensor_msgs/Image`` (REP 118: ``16UC1`` millimetres or ``32FC1`` metres, any row
    padding and byte order), or a ``sensor_msgs/CompressedImage`` of image_transport's ``compressedDepth``
    format (PNG or RVL, :mod:`ros2_tracker.io.depth_codec`), into a new ``(H, W)`` float32 array of metres,
    NaN where the sensor has no depth (0, or a non-finite float).

    Raises:
        ImageConversionError: another encoding (a colour image on the depth topic) or compressed format (a
            JPEG), zero height or width, ``step`` shorter than a row, ``data`` whose length is not
            ``step * height``, or compressedDepth data that cannot be decoded.
    """
    if hasattr(msg, "format"):  # a CompressedImage
        fmt = str(msg.format or "")
        if not is_compressed_depth(fmt):
            raise ImageConversionError(f"compressed format {fmt!r} is not a depth image (expected "
                                       "image_transport's '<16UC1|32FC1>; compressedDepth <png|rvl>')")
        try:
            return decode_compressed_depth(fmt, _as_bytes(msg.data))
        except DepthCodecError as exc:
            raise ImageConversionError(str(exc)) from None
    encoding, height, width, step, data = _checked_layout(msg, _DEPTH_LAYOUT, "depth image encoding")
    _, size, unit = _DEPTH_LAYOUT[encoding]
    rows = np.ascontiguousarray(data.reshape(height, step)[:, : width * size])
    kind = "u2" if size == 2 else "f4"
    values = rows.view(f"{'>' if msg.is_bigendian else '<'}{kind}").reshape(height, width)
    metres = values.astype(np.float32)
    if unit != 1.0:
        metres *= np.float32(unit)
    metres[~(metres > 0) | ~np.isfinite(metres)] = np.nan  # 0, negative, NaN, inf: no depth
    return metres


def bgr_to_image_msg(image: np.ndarray, msg_cls: type, encoding: str = "bgr8", header: Any = None) -> Any:
    """Encode a BGR (or grey) uint8 image as a new ``msg_cls`` (e.g. ``sensor_msgs.msg.Image``).

    Args:
        image: ``(H, W, 3)`` uint8 BGR, or ``(H, W)`` uint8 grey.
        msg_cls: the message class to instantiate.
        encoding: one of :data:`IMAGE_ENCODINGS`. Colour to grey uses OpenCV's BGR2GRAY; grey to
            mono16 multiplies by 257 (255 -> 65535), as cv_bridge does.
        header: a ``std_msgs/Header`` to set, or None to keep the message's default.

    Returns:
        The message, rows unpadded (``step = width * bytes per pixel``), in this machine's byte order.

    Raises:
        ImageConversionError: unsupported encoding, or an image that is not uint8 (H, W, 3) / (H, W).
    """
    if encoding not in _LAYOUT:
        raise ImageConversionError(f"unsupported encoding {encoding!r}; supported: "
                                   f"{', '.join(IMAGE_ENCODINGS)}")
    bgr, grey = _checked_image(image)
    if encoding in ("mono8", "mono16"):
        out = grey if grey is not None else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        if encoding == "mono16":
            out = out.astype(np.uint16) * np.uint16(257)
    else:
        if bgr is None:
            bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        out = bgr if encoding == "bgr8" else cv2.cvtColor(bgr, _FROM_BGR[encoding])
    msg = msg_cls()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(out.shape[0]), int(out.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == "big")
    msg.step = int(out.strides[0])
    msg.data = _byte_array(out)
    return msg


def compressed_msg_to_bgr(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) into a new ``(H, W, 3)`` uint8 BGR array.

    The payload type is found from its bytes (OpenCV ``imdecode``), not from ``format``; a format
    that says the image was compressed as rgb8 (``"... compressed rgb8"``) gets its channels swapped
    back. A ``compressedDepth`` depth image is refused (:func:`depth_msg_to_metres` reads it).

    Raises:
        ImageConversionError: empty data, ``compressedDepth``, or bytes OpenCV cannot decode.
    """
    fmt = str(getattr(msg, "format", "") or "")
    if is_compressed_depth(fmt):
        raise ImageConversionError(f"compressed format {fmt!r} is a depth image, not a picture")
    data = _as_bytes(msg.data)
    if data.size == 0:
        raise ImageConversionError(f"compressed image has no data (format {fmt!r})")
    # the stored pixels, as image_transport decodes them: an EXIF orientation tag is not applied
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:  # e.g. a header claiming more pixels than CV_IO_MAX_IMAGE_PIXELS (2**30)
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
        raise ImageConversionError(f"cannot decode the compressed image (format {fmt!r}, {data.size} bytes): "
                                   f"{detail}") from None
    if image is None:
        raise ImageConversionError(f"cannot decode the compressed image (format {fmt!r}, {data.size} bytes): "
                                   "not a JPEG/PNG that OpenCV can read")
    if fmt.replace(" ", "").lower().endswith("compressedrgb8"):
        image = np.ascontiguousarray(image[:, :, ::-1])
    return image


def bgr_to_compressed_msg(image: np.ndarray, msg_cls: type, fmt: str = "jpeg", header: Any = None, *,
                          jpeg_quality: int = 90, png_level: int = 3) -> Any:
    """Compress a BGR (or grey) uint8 image into a new ``msg_cls`` (e.g. ``sensor_msgs.msg.CompressedImage``).

    ``format`` is set as compressed_image_transport does: ``"bgr8; jpeg compressed bgr8"`` (or
    ``"mono8; png compressed mono8"`` for a grey image), which image_transport subscribers parse.

    Args:
        image: ``(H, W, 3)`` uint8 BGR, or ``(H, W)`` uint8 grey.
        msg_cls: the message class to instantiate.
        fmt: ``"jpeg"`` or ``"png"``.
        header: a ``std_msgs/Header`` to set, or None.
        jpeg_quality: JPEG quality, 1..100.
        png_level: PNG compression level, 0..9.

    Raises:
        ImageConversionError: unknown ``fmt``, a quality out of range, or an invalid image.
    """
    if fmt not in _COMPRESSED_FORMATS:
        raise ImageConversionError(f"unsupported compressed format {fmt!r}; supported: jpeg, png")
    if not 1 <= jpeg_quality <= 100 or not 0 <= png_level <= 9:
        raise ImageConversionError(f"jpeg_quality must be in [1, 100] and png_level in [0, 9], got "
                                   f"{jpeg_quality} and {png_level}")
    bgr, grey = _checked_image(image)
    pixels = bgr if bgr is not None else grey
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == "jpeg" else \
        [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)]
    ok, encoded = cv2.imencode(_COMPRESSED_FORMATS[fmt], pixels, params)
    if not ok:
        raise ImageConversionError(f"OpenCV could not encode a {pixels.shape} image as {fmt}")
    msg = msg_cls()
    if header is not None:
        msg.header = header
    kind = "bgr8" if bgr is not None else "mono8"
    msg.format = f"{kind}; {fmt} compressed {kind}"
    msg.data = _byte_array(encoded)
    return msg


def depth_to_compressed_depth_msg(depth: np.ndarray, msg_cls: type, encoding: str = "16UC1",
                                  codec: str = "png", header: Any = None, **options: Any) -> Any:
    """A new ``msg_cls`` (``sensor_msgs.msg.CompressedImage``) holding a depth image in image_transport's
    ``compressedDepth`` format, as compressed_depth_image_transport publishes it
    (:func:`ros2_tracker.io.depth_codec.encode_compressed_depth`: ``depth`` uint16 millimetres for ``16UC1``,
    float metres for ``32FC1``; ``options``: ``depth_max``, ``depth_quantization``, ``png_level``).

    Raises:
        ImageConversionError: an encoding or codec not supported, or an image that is not 2-D.
    """
    try:
        fmt, data = encode_compressed_depth(np.asarray(depth), encoding, codec, **options)
    except DepthCodecError as exc:
        raise ImageConversionError(str(exc)) from None
    msg = msg_cls()
    if header is not None:
        msg.header = header
    msg.format = fmt
    msg.data = _byte_array(np.frombuffer(data, dtype=np.uint8))
    return msg


def _checked_layout(msg: Any, layouts: dict[str, tuple] = _LAYOUT,
                    what: str = "image encoding") -> tuple[str, int, int, int, np.ndarray]:
    """Validate an Image message's fields against ``layouts`` (encoding -> (channels, bytes per channel,
    ...)); return encoding, height, width, step and its bytes."""
    encoding = str(msg.encoding)
    if encoding not in layouts:
        raise ImageConversionError(f"unsupported {what} {encoding!r}; supported: {', '.join(layouts)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image has zero size: height={height}, width={width}")
    channels, depth = layouts[encoding][:2]
    row = width * channels * depth
    if step < row:
        raise ImageConversionError(f"step={step} bytes is shorter than a row of {width} {encoding} pixels "
                                   f"({row} bytes)")
    data = _as_bytes(msg.data)
    if data.size != step * height:
        raise ImageConversionError(f"data has {data.size} bytes, expected step * height = {step} * {height} "
                                   f"= {step * height} ({encoding}, width {width})")
    return encoding, height, width, step, data


def _checked_image(image: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(bgr, None)`` for an (H, W, 3) uint8 image, ``(None, grey)`` for (H, W) or (H, W, 1)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        what = f"dtype {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageConversionError(f"image must be a uint8 numpy array, got {what}")
    if image.size == 0:
        raise ImageConversionError(f"image is empty: shape {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return None, np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image), None
    raise ImageConversionError(f"image must have shape (H, W, 3) BGR or (H, W) grey, got {image.shape}")


def _as_bytes(data: Any) -> np.ndarray:
    """A message's ``data`` as a flat uint8 array (zero-copy for buffers)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageConversionError(f"data must hold bytes (uint8), got dtype {data.dtype}")
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        pass
    try:
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageConversionError(f"data is not a sequence of bytes: {exc}") from None


def _byte_array(pixels: np.ndarray) -> array.array:
    """One buffer copy of a C-contiguous array into ``array.array('B')`` (rclpy's fast path)."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(pixels).reshape(-1).view(np.uint8))
    return out


def _cv_bridge(*, required: bool) -> Any:
    """A ``cv_bridge.CvBridge`` when cv_bridge imports, else None (ImportError when ``required``)."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        if required:
            raise
        return None
    return CvBridge()


def _decode_with_cv_bridge(bridge: Any, msg: Any) -> np.ndarray:
    from cv_bridge import CvBridgeError

    try:
        image = bridge.imgmsg_to_cv2(msg, desired_encoding="bgr8")
    except CvBridgeError as exc:
        raise ImageConversionError(f"cv_bridge could not convert a {msg.encoding} image: {exc}") from None
    # the result must own its memory (never a view of the message's buffer), like the numpy path's
    return image if image.flags.owndata and image.flags.c_contiguous else np.array(image, order="C")
