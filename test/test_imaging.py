"""Raw image decoding (every ROS encoding vpr_ros accepts) without ROS."""
import numpy as np
import pytest

from vpr_ros import imaging
from vpr_ros.imaging import ImageDecodeError, decode_raw, encode_raw

H, W = 24, 32


@pytest.fixture(scope='module')
def rgb():
    """A smooth colour ramp: red across, green down, blue falling across."""
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([xx * 8, yy * 10, 255 - xx * 6], -1).astype(np.uint8)


def _row_bytes(encoding):
    channels, depth, _ = imaging.RAW_ENCODINGS[encoding]
    return W * channels * depth


@pytest.mark.parametrize('encoding', sorted(imaging.RAW_ENCODINGS))
def test_every_encoding_round_trips(rgb, encoding):
    back = decode_raw(encoding, H, W, _row_bytes(encoding), encode_raw(rgb, encoding))
    assert back.shape == (H, W, 3) and back.dtype == np.uint8
    err = np.abs(back.astype(int) - rgb.astype(int))
    if encoding in ('mono8', '8uc1', 'mono16'):
        gray = rgb.astype(float) @ [0.299, 0.587, 0.114]
        err = np.abs(back[..., 0] - gray)
    # lossless layouts exact, grey within rounding; 4:2:2 chroma and Bayer demosaicing (its
    # border pixels) within a few levels
    limit = 12 if encoding.startswith('bayer') else 6 if 'yu' in encoding or 'uyvy' in encoding \
        else 1 if encoding in ('mono8', '8uc1', 'mono16') else 0
    assert err.max() <= limit and err.mean() < 3


def test_bayer_patterns_are_not_interchangeable(rgb):
    """ROS's bayer_rggb8 puts red at (0, 0): decoding it as bggr8 swaps red and blue."""
    mosaic = encode_raw(rgb, 'bayer_rggb8')
    assert mosaic[0] == rgb[0, 0, 0] and mosaic[W + 1] == rgb[1, 1, 2]
    right = decode_raw('bayer_rggb8', H, W, W, mosaic)
    wrong = decode_raw('bayer_bggr8', H, W, W, mosaic)
    assert np.abs(right.astype(int) - rgb).mean() < 2 < np.abs(wrong.astype(int) - rgb).mean()


def test_sixteen_bit_byte_order_and_row_padding():
    """is_bigendian decides which byte is the high one; rows may be padded (step > width)."""
    value = np.uint16(0x12F0)
    little = np.full((2, 3), value, '<u2').tobytes()
    big = np.full((2, 3), value, '>u2').tobytes()
    assert decode_raw('mono16', 2, 3, 6, little)[0, 0, 0] == 0x12
    assert decode_raw('mono16', 2, 3, 6, big, bigendian=True)[0, 0, 0] == 0x12
    assert decode_raw('mono16', 2, 3, 6, big)[0, 0, 0] == 0xF0  # the wrong flag shows
    padded = b''.join(np.full(3, value, '<u2').tobytes() + b'\0\0' for _ in range(2))
    assert decode_raw('mono16', 2, 3, 8, padded).shape == (2, 3, 3)


@pytest.mark.parametrize('encoding, width, step, size, reason', [
    ('32fc1', 4, 16, 64, 'unsupported encoding'),
    ('yuv422', 3, 6, 12, 'even width'),
    ('rgb16', 4, 24, 40, 'needs 48 bytes'),
    ('bayer_rggb8', 0, 0, 0, 'zero-size'),
])
def test_bad_raw_images_say_why(encoding, width, step, size, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        decode_raw(encoding, 2, width, step, bytes(size))
