"""JPEG frames decoded at the reduction the query network needs (imaging.decode_compressed
with min_size): the largest 1/2, 1/4, 1/8 still covering the input, full size otherwise."""
import numpy as np

from vpr_ros import imaging


def _frame(h=480, w=640):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) % 256)], -1).astype(np.uint8)


def test_jpeg_decodes_at_the_largest_reduction_covering_the_input():
    data = imaging.encode_compressed(_frame(), 'jpeg')
    assert imaging.decode_compressed('jpeg', data).shape == (480, 640, 3)
    assert imaging.decode_compressed('jpeg', data, min_size=(136, 184)).shape == (240, 320, 3)
    assert imaging.decode_compressed('jpeg', data, min_size=(100, 150)).shape == (120, 160, 3)
    assert imaging.decode_compressed('jpeg', data, min_size=(50, 60)).shape == (60, 80, 3)
    assert imaging.decode_compressed('jpeg', data, min_size=(300, 400)).shape == (480, 640, 3)
    half = imaging.decode_compressed('jpeg', data, min_size=(136, 184)).astype(np.float32)
    full = imaging.decode_compressed('jpeg', data).astype(np.float32)
    area = full.reshape(240, 2, 320, 2, 3).mean((1, 3))
    assert np.abs(half - area).mean() < 3.0   # the same picture, at half size


def test_png_and_checks_are_unchanged_by_min_size():
    png = imaging.encode_compressed(_frame(48, 64), 'png')
    out = imaging.decode_compressed('png', png, min_size=(8, 8))
    assert out.shape == (48, 64, 3)
    assert np.array_equal(out, imaging.decode_compressed('png', png))
