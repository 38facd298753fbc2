"""Image decoding for the ROS image encodings vpr_ros accepts, without ROS.

The nodes hand the raw fields of sensor_msgs/Image and sensor_msgs/CompressedImage to these
functions; bag readers and the evaluation use the same ones, so every path decodes alike.
All functions return uint8 RGB arrays shaped (H, W, 3).
"""
from __future__ import annotations

import cv2
import numpy as np

# encoding -> (channels, bytes per channel, OpenCV conversion to RGB or None). 8UCn follow
# cv_bridge (BGR order); 16-bit images keep their high byte; OpenCV names a Bayer pattern by
# its second row and column, so ROS's bayer_rggb8 is OpenCV's BayerBG (as in cv_bridge).
RAW_ENCODINGS = {
    'rgb8': (3, 1, None),
    'bgr8': (3, 1, cv2.COLOR_BGR2RGB),
    'mono8': (1, 1, cv2.COLOR_GRAY2RGB),
    'rgba8': (4, 1, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, 1, cv2.COLOR_BGRA2RGB),
    '8uc1': (1, 1, cv2.COLOR_GRAY2RGB),
    '8uc3': (3, 1, cv2.COLOR_BGR2RGB),
    '8uc4': (4, 1, cv2.COLOR_BGRA2RGB),
    'mono16': (1, 2, cv2.COLOR_GRAY2RGB),
    'rgb16': (3, 2, None),
    'bgr16': (3, 2, cv2.COLOR_BGR2RGB),
    'rgba16': (4, 2, cv2.COLOR_RGBA2RGB),
    'bgra16': (4, 2, cv2.COLOR_BGRA2RGB),
    'yuv422': (2, 1, cv2.COLOR_YUV2RGB_UYVY),
    'uyvy': (2, 1, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': (2, 1, cv2.COLOR_YUV2RGB_YUYV),
    'yuyv': (2, 1, cv2.COLOR_YUV2RGB_YUYV),
    'bayer_rggb8': (1, 1, cv2.COLOR_BayerBG2RGB),
    'bayer_bggr8': (1, 1, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg8': (1, 1, cv2.COLOR_BayerGR2RGB),
    'bayer_grbg8': (1, 1, cv2.COLOR_BayerGB2RGB),
}


# default pixel budget of a camera frame: admits 4K (3840x2160) and 12 MP (4000x3000) frames
DEFAULT_MAX_PIXELS = 4096 * 4096
# JPEG start-of-frame markers (baseline, extended, progressive, lossless...; not DHT/JPG/DAC)
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageDecodeError(ValueError):
    """An image that cannot be decoded; the message says why."""


def check_pixels(width: int, height: int, max_pixels, what: str = 'image') -> None:
    """ImageDecodeError when width x height exceeds ``max_pixels`` (None or 0: no budget)."""
    if max_pixels and width * height > max_pixels:
        raise ImageDecodeError(f'{what} is {width}x{height} = {width * height} pixels, over the '
                               f'budget of {max_pixels} (max_image_pixels); refused undecoded')


def check_raw_layout(encoding: str, height: int, width: int, step: int, size: int,
                     max_pixels=DEFAULT_MAX_PIXELS) -> int:
    """Check the fields of a sensor_msgs/Image against each other and the pixel budget
    before anything is allocated; returns the row stride to use (``step`` or the packed row)."""
    enc = encoding.lower()
    if enc not in RAW_ENCODINGS:
        raise ImageDecodeError(f'unsupported encoding {encoding!r}; supported: '
                               f'{", ".join(RAW_ENCODINGS)} (raw) and jpeg/png (compressed)')
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'zero-size image ({width}x{height})')
    check_pixels(width, height, max_pixels, f'{encoding} image')
    channels, depth, _ = RAW_ENCODINGS[enc]
    if channels == 2 and width % 2:
        raise ImageDecodeError(f'{encoding} needs an even width, got {width}')
    row = width * channels * depth
    step = step or row
    if step > size:
        raise ImageDecodeError(f'{encoding} image {width}x{height}: step {step} is larger than '
                               f'the {size} bytes of data (needs {step} x {height})')
    if step < row or size < step * (height - 1) + row:
        raise ImageDecodeError(f'{encoding} image {width}x{height} step {step} needs '
                               f'{step * (height - 1) + row} bytes, got {size}')
    return step


def _jpeg_size(data: bytes):
    """(width, height) from the first start-of-frame segment, or None."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        seg = int.from_bytes(data[i + 2:i + 4], 'big')
        if marker in _SOF:
            if i + 9 > n:
                return None
            return (int.from_bytes(data[i + 7:i + 9], 'big'),
                    int.from_bytes(data[i + 5:i + 7], 'big'))
        if marker == 0xDA or seg < 2:  # scan data before any frame header: malformed
            return None
        i += 2 + seg
    return None


def compressed_size(data: bytes):
    """(width, height) read from a JPEG frame header or the PNG IHDR chunk, without decoding;
    None when the header cannot be found."""
    if data[:2] == b'\xff\xd8':
        return _jpeg_size(data)
    if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) >= 24 and data[12:16] == b'IHDR':
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    return None


def decode_raw(encoding: str, height: int, width: int, step: int, data,
               bigendian: bool = False, max_pixels=DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode the fields of a sensor_msgs/Image into RGB (``bigendian``: its is_bigendian).
    Over ``max_pixels`` (None: no budget) or inconsistent fields: ImageDecodeError."""
    buf = np.frombuffer(memoryview(data), dtype=np.uint8)
    step = check_raw_layout(encoding, height, width, step, buf.size, max_pixels)
    channels, depth, conversion = RAW_ENCODINGS[encoding.lower()]
    row = width * channels * depth
    # rows viewed in place (the last one may be unpadded): only height x row bytes are copied
    img = np.ascontiguousarray(np.lib.stride_tricks.as_strided(
        buf, shape=(height, row), strides=(step, 1), writeable=False))
    if depth == 2:
        img = (img.view('>u2' if bigendian else '<u2') >> 8).astype(np.uint8)
    img = img.reshape(height, width, channels)
    if conversion is None:
        return np.ascontiguousarray(img)
    return cv2.cvtColor(img if channels > 1 else img[..., 0], conversion)


def _looks_complete(data: bytes) -> str:
    """'' when the JPEG/PNG stream is complete, otherwise the reason."""
    if data[:2] == b'\xff\xd8':
        tail = data.rstrip(b'\x00')
        return '' if tail[-2:] == b'\xff\xd9' else 'truncated JPEG (no end-of-image marker)'
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return '' if b'IEND' in data[-16:] else 'truncated PNG (no IEND chunk)'
    return 'data is neither JPEG nor PNG'


# cv2.imread flags that decode a JPEG at 1/2, 1/4 or 1/8 of its size (DCT scaling)
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (2, cv2.IMREAD_REDUCED_COLOR_2))


def reduced_jpeg_flag(width: int, height: int, min_size) -> int:
    """The imdecode flag that decodes a ``width`` x ``height`` JPEG at the largest reduction
    still covering ``min_size`` = (h, w); IMREAD_COLOR (full size) when none does."""
    h, w = int(min_size[0]), int(min_size[1])
    for factor, flag in _REDUCED:
        if width // factor >= w and height // factor >= h:
            return flag
    return cv2.IMREAD_COLOR


def decode_compressed(fmt: str, data, max_pixels=DEFAULT_MAX_PIXELS, min_size=None) -> np.ndarray:
    """Decode the fields of a sensor_msgs/CompressedImage (JPEG or PNG) into RGB.

    The size in the header is checked against ``max_pixels`` (None: no budget) first, so a
    small file claiming a huge image is refused before the decoder allocates anything. With
    ``min_size`` = (h, w), a JPEG is decoded at the largest 1/2, 1/4 or 1/8 reduction that still
    covers it (the query network's input size: a 640x480 frame for a 136x184 network decodes
    at 320x240, and resizing it to the input costs less too).
    """
    raw = bytes(data)
    if not raw:
        raise ImageDecodeError('empty compressed image')
    if 'compressedDepth' in fmt:
        raise ImageDecodeError(f'unsupported compressed format {fmt!r} (depth images)')
    reason = _looks_complete(raw)
    if reason:
        raise ImageDecodeError(f'{reason} (format {fmt!r}, {len(raw)} bytes)')
    size = compressed_size(raw)
    if size is None:
        raise ImageDecodeError(f'no image size in the header (format {fmt!r}, {len(raw)} '
                               'bytes): corrupt JPEG/PNG')
    if size[0] <= 0 or size[1] <= 0:
        raise ImageDecodeError(f'zero-size compressed image ({size[0]}x{size[1]})')
    check_pixels(*size, max_pixels, f'compressed image ({fmt!r}, {len(raw)} bytes)')
    try:
        flag = reduced_jpeg_flag(*size, min_size) if min_size and raw[:2] == b'\xff\xd8' \
            else cv2.IMREAD_COLOR
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), flag)
    except cv2.error as exc:
        raise ImageDecodeError(f'corrupt compressed image (format {fmt!r}, {len(raw)} bytes): '
                               f'{str(exc).strip().splitlines()[-1]}') from None
    if img is None or img.size == 0:
        raise ImageDecodeError(f'corrupt compressed image (format {fmt!r}, {len(raw)} bytes)')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _rgb_to_yuv422(rgb: np.ndarray, uyvy: bool) -> np.ndarray:
    """RGB -> packed 4:2:2 (BT.601 video range, the inverse of OpenCV's YUV2RGB_UYVY/YUYV)."""
    f = rgb.astype(np.float32)
    y = 16 + f @ np.float32([0.257, 0.504, 0.098])
    u = 128 + f @ np.float32([-0.148, -0.291, 0.439])
    v = 128 + f @ np.float32([0.439, -0.368, -0.071])
    u = np.repeat((u[:, 0::2] + u[:, 1::2]) / 2, 2, axis=1)
    v = np.repeat((v[:, 0::2] + v[:, 1::2]) / 2, 2, axis=1)
    chroma = np.where(np.arange(rgb.shape[1]) % 2 == 0, u, v)
    planes = (chroma, y) if uyvy else (y, chroma)
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def _rgb_to_bayer(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """RGB -> one-channel Bayer mosaic; ``pattern`` is the 2x2 tile, e.g. 'rggb'."""
    out = np.empty(rgb.shape[:2], np.uint8)
    for k, colour in enumerate(pattern):
        r, c = divmod(k, 2)
        out[r::2, c::2] = rgb[r::2, c::2, 'rgb'.index(colour)]
    return out


def encode_raw(rgb: np.ndarray, encoding: str = 'rgb8', bigendian: bool = False) -> bytes:
    """RGB (H,W,3) uint8 -> the byte layout of ``encoding`` (inverse of decode_raw, for
    publishers, tests and bag writers; 16-bit values are the 8-bit ones times 257)."""
    enc = encoding.lower()
    conv = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'mono8': cv2.COLOR_RGB2GRAY,
            'rgba8': cv2.COLOR_RGB2RGBA, 'bgra8': cv2.COLOR_RGB2BGRA,
            '8uc1': cv2.COLOR_RGB2GRAY, '8uc3': cv2.COLOR_RGB2BGR, '8uc4': cv2.COLOR_RGB2BGRA}
    base = enc[:-2] + '8' if enc.endswith('16') else enc
    if base in conv:
        out = rgb if conv[base] is None else cv2.cvtColor(rgb, conv[base])
        if enc != base:
            out = (out.astype(np.uint16) * 257).astype('>u2' if bigendian else '<u2')
    elif enc in ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv') and rgb.shape[1] % 2 == 0:
        out = _rgb_to_yuv422(rgb, uyvy=enc in ('yuv422', 'uyvy'))
    elif enc.startswith('bayer_') and enc.endswith('8') and len(enc) == 11:
        out = _rgb_to_bayer(rgb, enc[6:10])
    else:
        raise ImageDecodeError(f'cannot encode to {encoding!r}')
    return np.ascontiguousarray(out).tobytes()


def encode_compressed(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 90) -> bytes:
    """RGB (H,W,3) uint8 -> JPEG or PNG bytes."""
    ext = '.png' if 'png' in fmt.lower() else '.jpg'
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == '.jpg' else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageDecodeError(f'could not encode image as {fmt}')
    return buf.tobytes()


def read_image_file(path, max_pixels=None) -> np.ndarray:
    """Read a JPEG/PNG file as RGB; ImageDecodeError on a corrupt or truncated file (files on
    disk have no pixel budget unless ``max_pixels`` is given; OpenCV keeps its own limit)."""
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return decode_compressed('png' if str(path).lower().endswith('.png') else 'jpeg', data,
                                 max_pixels)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f'{path}: {exc}') from None
