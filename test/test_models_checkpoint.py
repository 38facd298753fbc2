"""vpr_ros checkpoints round trip and refuse bad files (map compatibility: mapstore)."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vpr_ros.models import create_model
from vpr_ros.models.checkpoint import (CheckpointError, load_checkpoint, read_checkpoint,
                                       save_checkpoint)

GALLERY = {'encoder': 'dinov2_vitb14_boq', 'dim': 64}


def _query():
    torch.manual_seed(0)
    return create_model('mobilenetv3_small', dim=64, input_size=64).eval()


@pytest.mark.parametrize('suffix', ['.safetensors', '.pt'])
def test_round_trip_same_outputs_and_meta(tmp_path, suffix):
    model = _query()
    path = str(tmp_path / f'q{suffix}')
    save_checkpoint(path, model, {'compatible_with': GALLERY, 'epoch': 3})
    loaded, meta = load_checkpoint(path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta['name'] == 'mobilenetv3_small' and meta['dim'] == 64
    assert meta['input_size'] == [64, 64] and meta['compatible_with'] == GALLERY
    assert meta['extra'] == {'epoch': 3} and meta['mean'] == list(model.mean)
    if suffix == '.pt':  # plain tensors + a string: loads without unpickling code
        blob = torch.load(path, map_location='cpu', weights_only=True)
        assert isinstance(blob['vpr_ros_meta'], str)


def test_dinov2_round_trip_keeps_architecture_options(tmp_path):
    model = create_model('dinov2_vits14_reg_boq', input_size=42, embed_dim=32, depth=1,
                         num_heads=2, num_queries=4, row_dim=2).eval()
    path = str(tmp_path / 'g.safetensors')
    save_checkpoint(path, model)
    loaded, meta = load_checkpoint(path)
    x = torch.randn(1, 3, 42, 42)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
    assert meta['dim'] == 32 and meta['compatible_with'] is None
    bigger, _ = load_checkpoint(path, input_size=(70, 56))
    assert bigger.input_size == (70, 56)
    assert bigger.backbone.vit.pos_embed.shape == (1, 20, 32)
    with torch.no_grad():
        assert bigger(torch.randn(1, 3, 70, 56)).shape == (1, 32)


def test_corrupt_foreign_and_mismatched_files_are_refused(tmp_path):
    path = str(tmp_path / 'q.safetensors')
    save_checkpoint(path, _query(), {'compatible_with': GALLERY})
    data = open(path, 'rb').read()
    bad = tmp_path / 'truncated.safetensors'
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        load_checkpoint(str(bad))
    foreign = tmp_path / 'foreign.pth'
    torch.save({'w': torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match='not a checkpoint written by save_checkpoint'):
        load_checkpoint(str(foreign))
    state, meta = read_checkpoint(path)
    meta['create_kwargs']['dim'] = 32  # config no longer matches the stored weights
    save_file(load_file(path), str(tmp_path / 'mix.safetensors'),
              metadata={'vpr_ros': json.dumps(meta)})
    with pytest.raises(CheckpointError, match='does not fit'):
        load_checkpoint(str(tmp_path / 'mix.safetensors'))
    with pytest.raises(ValueError, match='JSON-serialisable'):
        save_checkpoint(str(tmp_path / 'x.pt'), _query(), {'bad': object()})
