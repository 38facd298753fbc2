"""The onnxruntime query path without torch: NumPy preprocessing equal to torch's, and the
pipeline the query_encoder node runs importing no torch, timm or torchvision."""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from node_fixtures import place_images
from ros_harness import python_env
from vpr_ros.imaging import encode_compressed
from vpr_ros.inference import load_onnx_encoder, read_onnx_meta
from vpr_ros.models import create_model, preprocess
from vpr_ros.models.checkpoint import model_meta
from vpr_ros.models.onnx_export import export_onnx
from vpr_ros.models.runtime import load_encoder
from vpr_ros.preprocess import network_input, resize_taps

# tolerances stated in the README: NumPy vs torch network input, and the descriptors after
# max abs difference of the normalised input. torch's float32 resize computes its filter
# weights in float32 (off by up to 6e-6 on [0, 1] pixels, e.g. 480 -> 168 rows); the NumPy
# one is within 2e-7 of torch's float64 resize
PIXEL_TOL = 1e-4
EXACT_TOL = 1e-6        # NumPy vs torch float64, on [0, 1] pixels
DESC_MAX_ABS = 1e-4     # max abs difference of L2-normalised descriptors
DESC_MIN_COS = 0.999    # cosine of the two paths' descriptors of the same image


@pytest.mark.parametrize('src, dst', [((480, 640), (96, 128)), ((480, 640), (168, 224)),
                                      ((123, 77), (64, 64)), ((40, 50), (96, 96)),
                                      ((96, 200), (96, 128)), ((64, 64), (64, 64))])
def test_numpy_input_equals_torch_preprocess(src, dst):
    """Shrinking (non-integer factors), enlarging, one axis unchanged and no resize."""
    rgb = np.random.default_rng(sum(src)).integers(0, 256, (2, *src, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ref = preprocess(rgb, dst, mean, std).numpy()
    got = network_input(rgb, dst, mean, std)
    assert got.shape == ref.shape == (2, 3, *dst) and got.dtype == np.float32
    assert got.flags.c_contiguous
    assert np.abs(got - ref).max() < PIXEL_TOL
    assert np.abs(network_input(rgb[0], dst, mean, std) - ref[:1]).max() < PIXEL_TOL
    x64 = torch.from_numpy(rgb).permute(0, 3, 1, 2).double() / 255
    if tuple(src) != tuple(dst):
        x64 = torch.nn.functional.interpolate(x64, size=dst, mode='bilinear',
                                              align_corners=False, antialias=True)
    unit = network_input(rgb, dst, (0, 0, 0), (1, 1, 1))
    assert np.abs(unit - x64.numpy()).max() < EXACT_TOL


def test_resize_taps_are_normalised_and_cached():
    idx, w = resize_taps(480, 96)
    assert idx.shape == w.shape and np.allclose(w.sum(1), 1, atol=1e-6)
    assert idx.max() < 480 and resize_taps(480, 96)[0] is idx
    with pytest.raises(ValueError):
        resize_taps(0, 4)
    with pytest.raises(ValueError, match=r'\(H,W,3\)'):
        network_input(np.zeros((4, 4), np.uint8), (2, 2), (0, 0, 0), (1, 1, 1))


@pytest.fixture(scope='module')
def lite0_onnx(tmp_path_factory):
    """The packaged efficientnet_lite0_vpr at 96x128, exported with a dynamic batch."""
    net = create_model('efficientnet_lite0_vpr', pretrained=True, input_size=(96, 128)).eval()
    path = tmp_path_factory.mktemp('onnx') / 'lite0.onnx'
    export_onnx(net, model_meta(net), out=str(path))
    return net, str(path)


def test_onnx_path_equals_torch_path_on_camera_frames(lite0_onnx):
    """The same frames through torch (torch resize + eager model) and the robot path (NumPy
    resize + onnxruntime): cosine >= 0.999 and max abs diff < 1e-4 per descriptor."""
    net, path = lite0_onnx
    frames = place_images(4, size=(480, 640), seed=3) + place_images(2, size=(90, 170), seed=4)
    ref_enc = load_encoder(model='efficientnet_lite0_vpr', input_size=(96, 128), threads=1)
    ort_enc = load_onnx_encoder(path, threads=1, input_size=(96, 128))
    assert ort_enc.name == 'efficientnet_lite0_vpr' and ort_enc.input_size == (96, 128)
    for rgb in frames:
        ref, got = ref_enc.encode(rgb)[0], ort_enc.encode(rgb)[0]
        assert float(ref @ got) >= DESC_MIN_COS
        assert np.abs(ref - got).max() < DESC_MAX_ABS
    batch = np.stack(frames[:4])
    assert np.abs(ort_enc.encode(batch) - ref_enc.encode(batch)).max() < DESC_MAX_ABS
    with pytest.raises(ValueError, match='exported for input'):
        load_onnx_encoder(path, input_size=(64, 64))
    with pytest.raises(ValueError, match='holds'):
        load_onnx_encoder(path, model='other')


def test_sidecar_metadata_for_foreign_onnx(tmp_path):
    """An ONNX file without vpr_ros metadata runs with a <file>.onnx.json sidecar."""
    net = create_model('mobilenetv3_small', dim=32, input_size=64).eval()
    path = tmp_path / 'foreign.onnx'
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation notices
        torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False,
                          input_names=['x'], output_names=['y'])
    with pytest.raises(ValueError, match='no vpr_ros metadata'):
        load_onnx_encoder(str(path))
    meta = {k: v for k, v in model_meta(net).items() if k in ('name', 'dim', 'mean', 'std')}
    (tmp_path / 'foreign.onnx.json').write_text(json.dumps(meta))
    with pytest.raises(ValueError, match='lacks input_size'):
        load_onnx_encoder(str(path))
    meta['input_size'] = [64, 64]
    (tmp_path / 'foreign.onnx.json').write_text(json.dumps(meta))
    enc = load_onnx_encoder(str(path))
    assert read_onnx_meta(enc.session, str(path))['dim'] == 32
    img = place_images(1, size=(80, 100))[0]
    with torch.inference_mode():
        want = net(preprocess(img, (64, 64), net.mean, net.std)).numpy()
    want /= np.linalg.norm(want)
    assert np.abs(enc.encode(img) - want).max() < DESC_MAX_ABS


PIPELINE = '''
import json, sys
from vpr_ros.config import QueryEncoderConfig
from vpr_ros.imaging import decode_compressed
from vpr_ros.query_pipeline import load_query_encoder
cfg = QueryEncoderConfig(checkpoint=sys.argv[1], backend='onnxruntime', threads=1)
enc = load_query_encoder(cfg)
out = [enc.encode(decode_compressed('jpeg', open(p, 'rb').read()))[0].tolist()
       for p in sys.argv[2:]]
import vpr_ros.nodes.query_encoder  # noqa: the node module itself (rclpy, messages)
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'torchvision'))
print(json.dumps({'heavy': heavy, 'desc': out, 'backend': enc.backend}))
'''


def test_query_pipeline_in_a_subprocess_imports_no_torch(lite0_onnx, tmp_path):
    """What the query_encoder node runs on an .onnx file: load, decode JPEG frames, encode;
    then the node module itself. torch, timm and torchvision stay out of sys.modules."""
    net, path = lite0_onnx
    frames = place_images(3, size=(480, 640), seed=5)
    files = []
    for i, rgb in enumerate(frames):
        files.append(tmp_path / f'{i}.jpg')
        files[-1].write_bytes(encode_compressed(rgb, 'jpeg', 95))
    res = subprocess.run([sys.executable, '-c', PIPELINE, path, *map(str, files)],
                         capture_output=True, text=True, env=python_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out['heavy'] == [] and out['backend'] == 'onnxruntime'
    from vpr_ros.imaging import read_image_file
    ref = load_encoder(model='efficientnet_lite0_vpr', input_size=(96, 128))
    for f, desc in zip(files, out['desc']):
        assert float(ref.encode(read_image_file(f))[0] @ np.float32(desc)) >= DESC_MIN_COS


def test_shipped_query_network_metadata_names_its_gallery(monkeypatch, tmp_path):
    """A packaged query model's metadata (and so its .onnx) carries compatible_with, read
    from its weights file, so the robot's map check accepts it without torch."""
    import types
    from vpr_ros.models import packaged
    from vpr_ros.models.checkpoint import save_checkpoint
    from vpr_ros.models.runtime import packaged_compatible_with
    net = create_model('mobilenetv3_small', dim=16, input_size=32)
    compat = {'encoder': 'efficientnet_lite2_vpr24', 'dim': 1280}
    path = tmp_path / 'q.safetensors'
    save_checkpoint(str(path), net, {'compatible_with': compat})
    monkeypatch.setattr(packaged, 'packaged_weights_path', lambda name: path)
    spec = types.SimpleNamespace(name='q', role='query', weights='vpr_ros/weights/q (packaged)')
    assert packaged_compatible_with(net, spec) == compat
    gallery = types.SimpleNamespace(name='g', role='gallery', weights=spec.weights)
    assert packaged_compatible_with(net, gallery) is None
    net.compatible_with = {'encoder': 'x', 'dim': 8}
    assert packaged_compatible_with(net, gallery) == {'encoder': 'x', 'dim': 8}
