"""Runtime encoder (torch, torchscript, onnxruntime) and ONNX export with parity and metadata."""
import numpy as np
import pytest
import torch

from vpr_ros.cli import main as cli_main
from vpr_ros.models import create_model
from vpr_ros.models.checkpoint import model_meta, save_checkpoint
from vpr_ros.models.onnx_export import export_onnx, parity
from vpr_ros.models.runtime import load_encoder

GALLERY = {'encoder': 'efficientnet_lite0_gem', 'dim': 1280}


@pytest.fixture(scope='module')
def query_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model('mobilenetv3_small', dim=1280, input_size=64).eval()
    path = str(tmp_path_factory.mktemp('ckpt') / 'query.safetensors')
    save_checkpoint(path, model, {'compatible_with': GALLERY})
    return path


def _images(n=3):
    return np.random.default_rng(0).integers(0, 256, (n, 80, 100, 3), dtype=np.uint8)


@pytest.mark.parametrize('batch', [None, 1])
def test_onnx_parity_small_query_model(batch):
    model = create_model('mobilenetv3_small', dim=128, input_size=64).eval()
    assert parity(model, export_onnx(model, model_meta(model), batch=batch)) < 1e-4


def test_encoder_torch_and_onnxruntime_agree(query_ckpt):
    enc = load_encoder(checkpoint=query_ckpt, threads=1)
    assert (enc.name, enc.dim, enc.input_size) == ('mobilenetv3_small', 1280, (64, 64))
    assert enc.compatible_with == GALLERY
    enc.warmup()
    d = enc.encode(_images())
    assert d.shape == (3, 1280) and d.dtype == np.float32
    assert np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-5)
    assert enc.encode(_images()[0]).shape == (1, 1280)
    ort_enc = load_encoder(checkpoint=query_ckpt, backend='onnxruntime')
    assert ort_enc.compatible_with == GALLERY and ort_enc.dim == 1280
    assert np.abs(ort_enc.encode(_images()) - d).max() < 1e-4


def test_torchscript_backend_matches_torch_at_any_batch(query_ckpt):
    ref = load_encoder(checkpoint=query_ckpt, threads=1)
    ts = load_encoder(checkpoint=query_ckpt, backend='torchscript', threads=1)
    assert (ts.backend, ts.name, ts.dim, ts.compatible_with) == \
        ('torchscript', 'mobilenetv3_small', 1280, GALLERY)
    assert isinstance(ts._graphs[1], torch.jit.ScriptModule)   # traced at load, frozen
    assert np.abs(ts.encode(_images()) - ref.encode(_images())).max() < 1e-5   # batch 3
    assert np.abs(ts.encode(_images()[0]) - ref.encode(_images()[0])).max() < 1e-5
    assert sorted(ts._graphs) == [1, 3]
    with pytest.raises(ValueError, match='backend must be one of'):
        load_encoder(checkpoint=query_ckpt, backend='tensorrt')


def test_cli_export_then_onnx_file_runs_with_metadata(query_ckpt, tmp_path, capsys):
    out = str(tmp_path / 'q.onnx')
    assert cli_main(['export-onnx', '--checkpoint', query_ckpt, '--out', out, '--batch', '1']) == 0
    assert 'parity max abs diff' in capsys.readouterr().out
    enc = load_encoder(checkpoint=out, backend='onnxruntime', threads=1)
    assert enc.name == 'mobilenetv3_small' and enc.compatible_with == GALLERY
    spin = 'session.intra_op.allow_spinning'
    calm = load_encoder(checkpoint=out, backend='onnxruntime', threads=1, spinning=False)
    assert calm.session.get_session_options().get_session_config_entry(spin) == '0'
    assert np.abs(calm.encode(_images()) - enc.encode(_images())).max() == 0
    ref = load_encoder(checkpoint=query_ckpt).encode(_images())
    assert np.abs(enc.encode(_images()) - ref).max() < 1e-4  # batch of 3 on a fixed-1 graph
    with pytest.raises(ValueError, match="backend='onnxruntime'"):
        load_encoder(checkpoint=out)


def test_gallery_encoder_by_name_uses_pretrained_weights():
    enc = load_encoder(model='efficientnet_lite0_gem', input_size=96)
    ref = create_model('efficientnet_lite0_gem', pretrained=True, input_size=96)
    assert enc.name == 'efficientnet_lite0_gem' and enc.compatible_with is None
    assert np.allclose(enc.encode(_images(1)), ref.encode(_images(1)), atol=1e-6)


def test_bad_input_is_refused_clearly(query_ckpt):
    enc = load_encoder(checkpoint=query_ckpt)
    with pytest.raises(ValueError, match='uint8'):
        enc.encode(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r'\(H,W,3\)'):
        enc.encode(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match='backend'):
        load_encoder(checkpoint=query_ckpt, backend='tensorrt')
    with pytest.raises(ValueError, match='model=NAME or checkpoint=PATH'):
        load_encoder()
