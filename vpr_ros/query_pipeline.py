"""The query side of the pipeline, shared by the query_encoder node and offline evaluation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_ros.config import QueryEncoderConfig


class IncompatibleQueryNetwork(RuntimeError):
    """The query network was not trained to be searched against this map."""


def check_query_compatible(encoder, map_encoder: str, map_dim: int) -> None:
    """Refuse a query network whose descriptors cannot be searched against the map.

    Compatible means: trained against this map's gallery encoder and dimension (the checkpoint
    says so in ``compatible_with``), or the very same model as the gallery (symmetric search).
    """
    compat = getattr(encoder, 'compatible_with', None) or {}
    if compat:
        ok = compat.get('encoder') == map_encoder and int(compat.get('dim', -1)) == map_dim
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


def with_map_model(cfg: QueryEncoderConfig) -> QueryEncoderConfig:
    """``cfg`` with the map's own encoder filled in when neither model nor checkpoint is set
    (symmetric search): the model, checkpoint and input size the map was built with."""
    if cfg.model or cfg.checkpoint:
        return cfg
    if not cfg.map_path:
        raise ValueError('no query network: set the model or checkpoint parameter, or map_path '
                         "(the map's own model is then used)")
    from vpr_ros.mapstore import read_manifest
    manifest = read_manifest(cfg.map_path)
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
    with no model and no checkpoint set, the map's own encoder (``with_map_model``)."""
    from vpr_ros.models.runtime import load_encoder
    cfg = with_map_model(cfg)
    encoder = load_encoder(model=cfg.model if not cfg.checkpoint else '',
                           checkpoint=cfg.checkpoint, backend=cfg.backend, threads=cfg.threads,
                           input_size=tuple(cfg.input_size) or None,
                           spinning=cfg.ort_spinning)
    if cfg.map_path:
        from vpr_ros.mapstore import read_manifest
        manifest = read_manifest(cfg.map_path)
        check_query_compatible(encoder, manifest['encoder'], int(manifest['dim']))
    encoder.warmup()
    return encoder
