"""Gallery fine-tuning: the MS-loss loop learns, augmentation, recall, float16 export."""
import numpy as np
import pytest
import torch

from vpr_ros.models import packaged  # noqa: F401  (registers efficientnet_lite0_vpr)
from vpr_ros.models.checkpoint import read_checkpoint
from vpr_ros.models.registry import create_model
from vpr_ros.training import gallery_finetune as gf
from vpr_ros.world.generate import WorldConfig, generate_world

SIZE = (48, 64)  # (h, w) training input of the tiny runs


@pytest.fixture(scope='module')
def tiny_town(tmp_path_factory):
    """6 places x 4 images at 64x48 (GSV layout) and a VG folder of the same town."""
    out = tmp_path_factory.mktemp('gallery_town')
    generate_world(WorldConfig(seed=1001, out=str(out), places=6, spacing_m=12.0,
                               conditions=('day', 'dusk'), formats=('gsv', 'vg'),
                               size=(64, 48), supersample=1, images_per_place=4,
                               progress=False))
    return out


def _cfg(town, tmp_path, **kw):
    base = dict(train=(str(town),), out=str(tmp_path / 'run'), input_size=SIZE, epochs=4,
                lr=3e-3, warmup_steps=1, places_per_batch=6, images_per_place=4,
                freeze_blocks=4, crop_scale=1.0, jitter=0.0, progress=False, threads=2)
    base.update(kw)
    return gf.GalleryConfig(**base)


def test_training_lowers_ms_loss(tiny_town, tmp_path):
    # One batch per epoch holds all 24 images (6 places x 4), so the epoch losses are
    # comparable: fine-tuning must pull each place's images together.
    cfg = _cfg(tiny_town, tmp_path, val=str(tiny_town / 'test'))
    model, log = gf.train_gallery(cfg)
    assert 0.0 <= log['val_before'] <= 1.0
    assert all(0.0 <= e['val_r1'] <= 1.0 for e in log['epochs'])
    losses = [e['loss'] for e in log['epochs']]
    assert log['images'] == 24 and log['places'] == 6
    assert all(e['steps'] == 1 for e in log['epochs'])
    assert losses[0] > 0 and losses[-1] < 0.85 * losses[0], losses
    assert (tmp_path / 'run' / 'last.safetensors').is_file()
    # frozen stem / early stages did not move, a trained stage did
    ref = create_model('efficientnet_lite0_gem', pretrained=True)
    net, ref_net = model.backbone.net, ref.backbone.net
    assert torch.equal(net.conv_stem.weight, ref_net.conv_stem.weight)
    assert torch.equal(net.blocks[3][0].conv_pw.weight, ref_net.blocks[3][0].conv_pw.weight)
    assert not torch.equal(net.blocks[5][0].conv_pw.weight, ref_net.blocks[5][0].conv_pw.weight)


def test_augment_shapes_and_range():
    rng = np.random.default_rng(0)
    imgs = [np.full((48, 64, 3), v, np.uint8) for v in (0, 128, 255)]
    x = gf.augment(imgs, (30, 40), (0.5,) * 3, (0.5,) * 3, 0.5, 0.3, rng)
    assert x.shape == (3, 3, 30, 40)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    plain = gf.augment(imgs, (48, 64), (0.5,) * 3, (0.5,) * 3, 1.0, 0.0, rng)
    assert torch.allclose(plain[1], torch.full_like(plain[1], 128 / 255 * 2 - 1), atol=1e-5)


def test_vg_recall_counts_hits_within_radius(tiny_town, monkeypatch):
    # Descriptors that encode the image's place: every query finds its own place (R@1 = 1);
    # queries with reversed place ids: the top match is place 5 - i, correct only when it
    # lies within 25 m.
    from vpr_ros.io.datasets import read_vg

    def by_place(model, paths, batch=32, backend='torch'):
        ids = [int(p.split('@p')[1][:5]) for p in paths]
        ids = [model(i) if '/queries/' in p else i for i, p in zip(ids, paths)]
        return np.eye(6, dtype=np.float32)[ids]

    monkeypatch.setattr(gf, 'encode_paths', by_place)
    rec = gf.vg_recall(lambda i: i, str(tiny_town / 'test'))
    assert rec['dusk'] == {'R@1': 1.0, 'R@5': 1.0, 'queries': 6}
    assert 0 < rec['chance']['R@1'] < 1
    flipped = gf.vg_recall(lambda i: 5 - i, str(tiny_town / 'test'))
    xy = np.array([[r.x, r.y] for r in read_vg(tiny_town / 'test' / 'database')])
    expect = np.mean(np.linalg.norm(xy - xy[::-1], axis=1) <= 25.0)
    assert flipped['dusk']['R@1'] == pytest.approx(expect) and expect < 1.0


def test_export_packaged_float16_roundtrip(tmp_path):
    model = create_model('efficientnet_lite0_gem', pretrained=True, input_size=SIZE).eval()
    path = tmp_path / 'lite0_vpr.safetensors'
    gf.export_packaged(model, str(path), extra={'note': 'test'})
    state, meta = read_checkpoint(str(path))
    assert meta['name'] == 'efficientnet_lite0_vpr' and meta['extra'] == {'note': 'test'}
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    loaded = create_model('efficientnet_lite0_vpr', input_size=SIZE).eval()
    loaded.load_state_dict(state)
    x = torch.rand(2, 3, *SIZE) * 2 - 1
    with torch.inference_mode():
        cos = (model(x) * loaded(x)).sum(1)
    assert float(cos.min()) > 0.999


def test_cli_flags_map_onto_config():
    import argparse
    from vpr_ros.cli import train_gallery as gallery_cli
    parser = argparse.ArgumentParser()
    gallery_cli.add_arguments(parser)
    args = parser.parse_args(['--train', 'a,b', '--input-size', '144,192', '--epochs', '2',
                              '--no-progress', '--freeze-blocks', '3'])
    cfg = gf.GalleryConfig(**{k: getattr(args, k) for k in gf.GalleryConfig.__dataclass_fields__})
    assert cfg.train == ('a', 'b') and cfg.input_size == (144, 192)
    assert cfg.epochs == 2 and cfg.freeze_blocks == 3 and cfg.progress is False
    assert cfg.ms_beta == 50.0 and cfg.ms_epsilon == 0.1 and args.evaluate == ''


def test_init_continues_from_packaged_multiscale_weights():
    """--init efficientnet_lite2_vpr starts the one-scale lite2 from the shipped weights, which
    differ from the ImageNet start; a model of another architecture is refused."""
    model = create_model('efficientnet_lite2_gem', pretrained=True, input_size=SIZE)
    imagenet = {k: v.clone() for k, v in model.state_dict().items()}
    gf.start_from(model, 'efficientnet_lite2_vpr')
    shipped = create_model('efficientnet_lite2_vpr', pretrained=True).state_dict()
    assert torch.equal(model.state_dict()['aggregator.p'], shipped['aggregator.gem.p'])
    head = 'backbone.net.conv_head.weight'
    assert torch.equal(model.state_dict()[head], shipped['backbone.backbone.net.conv_head.weight'])
    assert not torch.equal(model.state_dict()[head], imagenet[head])
    lite0 = create_model('efficientnet_lite0_gem', pretrained=False, input_size=SIZE)
    with pytest.raises(ValueError, match='no match'):
        gf.start_from(lite0, 'efficientnet_lite2_vpr')


def test_train_gallery_init_starts_from_packaged_weights(tiny_town, tmp_path):
    """train_gallery with init: the frozen stem holds the packaged model's weights, not the
    ImageNet ones of --model."""
    cfg = _cfg(tiny_town, tmp_path, epochs=1, init='efficientnet_lite0_vpr')
    model, _ = gf.train_gallery(cfg)
    shipped = create_model('efficientnet_lite0_vpr', pretrained=True).state_dict()
    imagenet = create_model('efficientnet_lite0_gem', pretrained=True).backbone.net
    stem = model.backbone.net.conv_stem.weight
    key = next(k for k in shipped if k.endswith('conv_stem.weight'))
    assert torch.equal(stem, shipped[key])
    assert not torch.equal(stem, imagenet.conv_stem.weight)
