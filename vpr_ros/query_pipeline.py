"""The query side of the pipeline, shared by the query_encoder node and offline evaluation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_ros.config import QueryEncoderConfig


class IncompatibleQueryNetwork(RuntimeError):
    """The query network was not trained to be searched against this map."""


def check_query_compatible(encoder, map_encoder: str, map_dim: int,
                           map_fingerprint: str = '') -> None:
    """Refuse a query network whose descriptors cannot be searched against the map.

    Compatible means: trained against this map's gallery weights and dimension (the checkpoint
    says so in ``compatible_with``), or the very same weights as the gallery (symmetric search).
    Weights are compared by fingerprint (sha256 of the state dict, ``map_fingerprint`` from the
    map's manifest) when both sides record one, so the same name with other weights is refused
    and the same weights under another name accepted; by name for maps and checkpoints made
    before fingerprints were recorded.
    """
    compat = getattr(encoder, 'compatible_with', None) or {}
    mine = compat.get('weights_fingerprint') if compat else \
        getattr(encoder, 'weights_fingerprint', '')
    dim = int(compat.get('dim', -1)) if compat else int(encoder.dim)
    if mine and map_fingerprint:
        if mine == map_fingerprint and dim == int(map_dim):
            return
        what = ('was trained against gallery weights' if compat else 'has the weights')
        raise IncompatibleQueryNetwork(
            f'query network {encoder.name!r} ({encoder.dim}-d) {what} {mine[:16]}... '
            f'({compat.get("encoder", encoder.name)}, {dim}-d), but the map was built with '
            f'weights {map_fingerprint[:16]}... ({map_encoder!r}, {map_dim}-d): descriptors '
            f'of different weights are not comparable, even under the same model name. Use '
            f'the weights the map was built with, or rebuild the map with these.')
    if compat:
        ok = compat.get('encoder') == map_encoder and dim == map_dim
        trained_for = f'{compat.get("encoder")} ({compat.get("dim")}-d)'
    else:
        ok = encoder.name == map_encoder and encoder.dim == map_dim
        trained_for = 'no gallery model (not trained for asymmetric search)'
    if not ok:
        raise IncompatibleQueryNetwork(
            f'query network {encoder.name!r} ({encoder.dim}-d) is trained for {trained_for}, '
            f'but the map was built by {map_encoder!r} ({map_dim}-d). Use a checkpoint trained '
            f'against this map\'s encoder (vpr-ros train asym --gallery-model {map_encoder}) or '
            f'the map\'s own model.')


def map_weights_fingerprint(manifest: dict) -> str:
    """The fingerprint of the weights a map was built with ('' for maps made before)."""
    return str((manifest.get('encoder_source') or {}).get('weights_fingerprint') or '')


def with_map_model(cfg: QueryEncoderConfig) -> QueryEncoderConfig:
    """``cfg`` with its query network made concrete when no checkpoint is set: with model
    'auto' the network shipped for the map's gallery model (vpr_ros.shipped_queries) if there
    is one; otherwise (and with '' or 'map') the map's own encoder, i.e. symmetric search with
    the model, checkpoint and input size the map was built with."""
    from vpr_ros.shipped_queries import AUTO, MAP_MODEL, resolve_query_model
    if cfg.checkpoint or cfg.model not in ('', AUTO, MAP_MODEL):
        return cfg
    if not cfg.map_path:
        raise ValueError('no query network: set the model or checkpoint parameter, or map_path '
                         "(the map's own model is then used)")
    from vpr_ros.mapstore import read_manifest
    manifest = read_manifest(cfg.map_path)
    shipped = resolve_query_model(cfg.model, manifest['encoder'])
    if shipped != manifest['encoder']:  # 'auto' and a query network ships for this gallery
        return dataclasses.replace(cfg, model=shipped)
    src = manifest.get('encoder_source') or {}
    checkpoint = src.get('checkpoint', '')
    if checkpoint and not Path(checkpoint).is_file():
        raise ValueError(f'the map {cfg.map_path} was built with the checkpoint {checkpoint}, '
                         'which is not on this machine: copy it and set the checkpoint parameter')
    return dataclasses.replace(
        cfg, model='' if checkpoint else (src.get('model') or manifest['encoder']),
        checkpoint=checkpoint, input_size=list(cfg.input_size or src.get('input_size') or []))


def load_query_encoder(cfg: QueryEncoderConfig):
    """Load the configured query network, checked against ``cfg.map_path`` when it is set;
    model 'auto', '' or 'map' are resolved against the map first (``with_map_model``).

    An .onnx checkpoint runs on onnxruntime through vpr_ros.inference, which imports no torch
    (the robot-side install, requirements-robot.txt); model names and torch checkpoints need
    torch (vpr_ros.models.runtime).
    """
    cfg = with_map_model(cfg)
    if cfg.checkpoint.endswith('.onnx'):
        if cfg.backend != 'onnxruntime':
            raise ValueError(f"{cfg.checkpoint!r} is an ONNX file: use backend='onnxruntime'")
        from vpr_ros.inference import load_onnx_encoder
        encoder = load_onnx_encoder(cfg.checkpoint, cfg.threads, cfg.ort_spinning,
                                    tuple(cfg.input_size) or None)
    else:
        try:
            from vpr_ros.models.runtime import load_encoder
        except ImportError as exc:  # a robot install without torch
            raise RuntimeError(
                f'query network {cfg.checkpoint or cfg.model!r} needs torch ({exc}); without '
                'torch set checkpoint to an .onnx file (vpr-ros export-onnx) and backend to '
                'onnxruntime') from exc
        # model and checkpoint together: a plain weights file of that model (or a release)
        encoder = load_encoder(model=cfg.model, checkpoint=cfg.checkpoint, backend=cfg.backend,
                               threads=cfg.threads, input_size=tuple(cfg.input_size) or None,
                               spinning=cfg.ort_spinning)
    if cfg.map_path:
        from vpr_ros.mapstore import read_manifest
        manifest = read_manifest(cfg.map_path)
        check_query_compatible(encoder, manifest['encoder'], int(manifest['dim']),
                               map_weights_fingerprint(manifest))
    encoder.warmup()
    return encoder


def no_place_gate(encoder, cfg: QueryEncoderConfig):
    """The no-place gate of ``encoder`` (vpr_ros.no_place.NoPlaceGate), or None when it has
    none: ``cfg.no_place_threshold`` > 0, or 0 for a shipped network's measured threshold."""
    from vpr_ros.shipped_queries import no_place_threshold
    threshold = no_place_threshold(encoder.name, cfg.no_place_threshold)
    if threshold <= 0:
        return None
    from vpr_ros.no_place import NoPlaceGate
    return NoPlaceGate.for_encoder(encoder, threshold)
