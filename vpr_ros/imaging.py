"""Image decoding for the ROS image encodings vpr_ros accepts, without ROS.

The nodes hand the raw fields of sensor_msgs/Image and sensor_msgs/CompressedImage to these
functions; bag readers and the evaluation use the same ones, so every path decodes alike.
All functions return uint8 RGB arrays shaped (H, W, 3).
"""
from __future__ import annotations

import cv2
import numpy as np

# encoding -> (channels, OpenCV conversion to RGB or None)
RAW_ENCODINGS = {
    'rgb8': (3, None),
    'bgr8': (3, cv2.COLOR_BGR2RGB),
    'mono8': (1, cv2.COLOR_GRAY2RGB),
    'rgba8': (4, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, cv2.COLOR_BGRA2RGB),
}


class ImageDecodeError(ValueError):
    """An image that cannot be decoded; the message says why."""


def decode_raw(encoding: str, height: int, width: int, step: int, data) -> np.ndarray:
    """Decode the fields of a sensor_msgs/Image into RGB."""
    enc = encoding.lower()
    if enc not in RAW_ENCODINGS:
        raise ImageDecodeError(f'unsupported encoding {encoding!r}; supported: '
                               f'{", ".join(RAW_ENCODINGS)} (raw) and jpeg/png (compressed)')
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'zero-size image ({width}x{height})')
    channels, conversion = RAW_ENCODINGS[enc]
    row = width * channels
    step = step or row
    buf = np.frombuffer(memoryview(data), dtype=np.uint8)
    if step < row or buf.size < step * (height - 1) + row:
        raise ImageDecodeError(f'{encoding} image {width}x{height} step {step} needs '
                               f'{step * (height - 1) + row} bytes, got {buf.size}')
    if buf.size < step * height:  # last row may be unpadded
        buf = np.concatenate([buf, np.zeros(step * height - buf.size, np.uint8)])
    img = buf[:step * height].reshape(height, step)[:, :row].reshape(height, width, channels)
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


def decode_compressed(fmt: str, data) -> np.ndarray:
    """Decode the fields of a sensor_msgs/CompressedImage (JPEG or PNG) into RGB."""
    raw = bytes(data)
    if not raw:
        raise ImageDecodeError('empty compressed image')
    if 'compressedDepth' in fmt:
        raise ImageDecodeError(f'unsupported compressed format {fmt!r} (depth images)')
    reason = _looks_complete(raw)
    if reason:
        raise ImageDecodeError(f'{reason} (format {fmt!r}, {len(raw)} bytes)')
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ImageDecodeError(f'corrupt compressed image (format {fmt!r}, {len(raw)} bytes)')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_raw(rgb: np.ndarray, encoding: str = 'rgb8') -> bytes:
    """RGB (H,W,3) uint8 -> the byte layout of ``encoding`` (inverse of decode_raw)."""
    enc = encoding.lower()
    conv = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'mono8': cv2.COLOR_RGB2GRAY,
            'rgba8': cv2.COLOR_RGB2RGBA, 'bgra8': cv2.COLOR_RGB2BGRA}
    if enc not in conv:
        raise ImageDecodeError(f'cannot encode to {encoding!r}')
    out = rgb if conv[enc] is None else cv2.cvtColor(rgb, conv[enc])
    return np.ascontiguousarray(out).tobytes()


def encode_compressed(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 90) -> bytes:
    """RGB (H,W,3) uint8 -> JPEG or PNG bytes."""
    ext = '.png' if 'png' in fmt.lower() else '.jpg'
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == '.jpg' else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageDecodeError(f'could not encode image as {fmt}')
    return buf.tobytes()


def read_image_file(path) -> np.ndarray:
    """Read a JPEG/PNG file as RGB; ImageDecodeError on a corrupt or truncated file."""
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return decode_compressed('png' if str(path).lower().endswith('.png') else 'jpeg', data)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f'{path}: {exc}') from None
