"""The query side of the pipeline, shared by the query_encoder node and offline evaluation."""
from __future__ import annotations

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


def load_query_encoder(cfg: QueryEncoderConfig):
    """Load the configured query network, checked against ``cfg.map_path`` when it is set."""
    from vpr_ros.models.runtime import load_encoder
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
