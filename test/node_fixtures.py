"""Builders of small maps and image sets for the node tests."""
from __future__ import annotations

import copy

import numpy as np
import yaml


def place_images(n: int, size=(120, 160), seed: int = 0):
    """``n`` visually distinct RGB images (random blobs of colour on gradients)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    images = []
    for _ in range(n):
        img = np.zeros((h, w, 3), np.float32)
        for c in range(3):
            img[..., c] = rng.uniform(0, 255) * (xx / w) + rng.uniform(0, 255) * (yy / h)
        for _ in range(6):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 30)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        images.append(np.clip(img / 2, 0, 255).astype(np.uint8))
    return images


def build_test_map(path, model: str, input_size, images, spacing_m: float = 30.0):
    """A map whose place i (at x = i * spacing) is image i, encoded by ``model``."""
    from vpr_ros.mapstore import MapStore, PlaceRecord
    from vpr_ros.models.runtime import load_encoder
    enc = load_encoder(model=model, input_size=tuple(input_size))
    descs = np.concatenate([enc.encode(img) for img in images])
    store = MapStore.create(path, encoder=enc.name, dim=enc.dim, dtype='float32',
                            encoder_source={'model': model, 'input_size': list(input_size)})
    places = [PlaceRecord(x=i * spacing_m, y=0.0, yaw=0.0, robot_id='mapper', session='s0',
                          source='test') for i in range(len(images))]
    store.add(descs, places)
    store.save()
    store.close()
    return descs


def textured_images(n: int, seed: int = 0):
    """Blurred noise at 160x120: many local features, distinct places."""
    import cv2
    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), np.uint8), (0, 0), 1.5)
            for _ in range(n)]


def build_verified_map(path, model: str, input_size, images) -> None:
    """build_test_map plus the RootSIFT local features of each place (geometric verification)."""
    from vpr_ros.verification.features import FeatureExtractor
    from vpr_ros.verification.store import LocalFeatureWriter
    build_test_map(path, model, input_size, images)
    ext, writer = FeatureExtractor('rootsift', 512), LocalFeatureWriter('rootsift', 512)
    for i, img in enumerate(images):
        writer.add(i, ext(img))
    writer.save(path)


def write_params(path, model: str, input_size, map_path: str, namespace: str = '',
                 **per_node) -> str:
    """A localize.yaml for the tests (per_node: {'matcher': {...}} overrides, or the settings
    of another node name, e.g. a second encoder: {'query_encoder_jpeg': {...}} starts from the
    query_encoder's); with ``namespace`` the keys name the nodes in that namespace."""
    params = {
        'query_encoder': {'ros__parameters': {
            'model': model, 'input_size': list(input_size), 'map_path': str(map_path),
            'image_topic': 'camera/image_raw', 'transport': 'raw',
            'descriptor_topic': 'vpr/descriptor'}},
        'gallery_server': {'ros__parameters': {'map_path': str(map_path), 'default_k': 5}},
        'matcher': {'ros__parameters': {'map_path': str(map_path), 'top_k': 5,
                                        'map_reload_period_s': 0.5, 'use_filter': False}},
    }
    encoder = params['query_encoder']['ros__parameters']
    for node, values in sorted(per_node.items(), key=lambda kv: kv[0] not in params):
        params.setdefault(node, {'ros__parameters': copy.deepcopy(encoder)})  # no YAML alias
        params[node]['ros__parameters'].update(values)
    if namespace:
        params = {f'{namespace}/{node}': body for node, body in params.items()}
    with open(path, 'w') as f:
        yaml.safe_dump(params, f)
    return str(path)
