"""gallery_server node: serves the map store (query, add keyframes, save, merge, info).

A map that cannot be loaded (missing directory, corrupt files, wrong model) is logged and every
service answers with the reason; setting the ``map_path`` parameter loads another map without
a restart. Mutating services run one at a time and are all-or-nothing. A served data file
truncated or replaced on disk is found (by stat) before any service reads it: every service
answers with the reason until the file is restored or the map reloaded. add_places with a
``request_id`` is idempotent: a retry gets the first answer and adds nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.parameter import Parameter
from rcl_interfaces.msg import SetParametersResult
from visualization_msgs.msg import MarkerArray

from vpr_ros.config import GalleryServerConfig
from vpr_ros.msg import MapInfo
from vpr_ros.nodes.component import Component, run_component
from vpr_ros.nodes.keyframes import keyframes_to_places
from vpr_ros.nodes.map_messages import (candidates_from_store, map_info_from_store,
                                        place_markers)
from vpr_ros.nodes.qos import latched_qos
from vpr_ros.srv import AddPlaces, GetMapInfo, MergeMap, QueryMap, SaveMap
from vpr_ros.validation import (check_descriptor, check_text, confined_path, InputError,
                                MAX_TEXT_LEN)

MAX_K = 1000


class GalleryServer(Component):
    reconfigurable = ('map_path',)  # a new map is loaded without a restart

    def __init__(self, node, cfg: GalleryServerConfig):
        super().__init__(node, cfg)
        self.store = None
        self.load_error = 'no map_path parameter set'
        self._image_encoder = None
        # save/merge targets and runtime map paths must stay inside this directory
        root = cfg.maps_root or (str(Path(cfg.map_path).resolve().parent) if cfg.map_path
                                 else '')
        self.maps_root = Path(root).resolve() if root else None
        group = MutuallyExclusiveCallbackGroup()
        self.info_pub = self.publisher(MapInfo, 'vpr/map_info', latched_qos())
        self.marker_pub = self.publisher(MarkerArray, 'vpr/map_markers', latched_qos())
        self.service(QueryMap, 'vpr/query_map', self._query_cb, callback_group=group)
        self.service(AddPlaces, 'vpr/add_places', self._add_cb, callback_group=group)
        self.service(SaveMap, 'vpr/save_map', self._save_cb, callback_group=group)
        self.service(GetMapInfo, 'vpr/get_map_info', self._info_cb, callback_group=group)
        self.service(MergeMap, 'vpr/merge_map', self._merge_cb, callback_group=group)
        self._load(cfg.map_path)
        node.add_on_set_parameters_callback(self._on_params)

    def shutdown(self) -> None:
        self.node.remove_on_set_parameters_callback(self._on_params)
        if self.store is not None:
            self.store.close()
            self.store = None
        super().shutdown()

    # -- map loading ---------------------------------------------------------------------
    def _load(self, path: str) -> bool:
        from vpr_ros.mapstore import MapStore, read_manifest
        if not path:
            self.store, self.load_error = None, 'no map_path parameter set'
            self.log.error('no map loaded: set the map_path parameter')
            return False
        if self.store is not None:
            self.store.close()
            self.store = None
        try:
            self._confine(path, 'map_path')
            read_manifest(path)  # a map store, before the writer lock file is created in it
            store = MapStore.open(path, writable=True)
        except Exception as exc:  # any reason a map cannot load is reported, never fatal
            self.store, self.load_error = None, f'cannot load map {path!r}: {exc}'
            self.log.error(self.load_error)
            return False
        self.store, self.load_error = store, ''
        self.log.info(f'serving map {path}: {store.num_places} places, encoder '
                      f'{store.encoder} ({store.dim}-d), index {store.index_type}')
        self._publish_info()
        return True

    def _on_params(self, params):
        for p in params:
            if p.name == 'map_path' and p.type_ == Parameter.Type.STRING:
                if p.value:
                    try:
                        self._confine(p.value, 'map_path')
                    except InputError as exc:
                        self.log.error(f'map_path refused, {self.cfg.map_path!r} kept: {exc}')
                        return SetParametersResult(successful=False, reason=str(exc))
                self.cfg.map_path = p.value
                self._load(p.value)
        return SetParametersResult(successful=True)

    def _publish_info(self) -> None:
        """Announce the map version (matchers reload) and its places (RViz markers)."""
        if self.store is not None:
            self.info_pub.publish(map_info_from_store(self.store))
            self.marker_pub.publish(place_markers(self.store, self.cfg.frame_id,
                                                  self.node.get_clock().now().to_msg()))

    def _unusable(self) -> str:
        """Why no service can use the map now ('' when it can): not loaded, or its files
        changed on disk (a restored file is taken back by check_files)."""
        if self.store is None:
            return self.load_error
        from vpr_ros.mapstore import MapError
        try:
            self.store.check_files()
        except MapError as exc:
            self.log.error(str(exc), throttle_duration_sec=5.0)
            return f'map unusable, nothing done: {exc}'
        return ''

    def _fail(self, resp, message: str):
        resp.success = False
        resp.message = message
        self.log.warning(message)
        return resp

    # -- services ------------------------------------------------------------------------
    def _query_cb(self, req, resp):
        problem = self._unusable()
        if problem:
            return self._fail(resp, problem)
        if req.encoder and req.encoder != self.store.encoder:
            return self._fail(resp, f'descriptor is for encoder {req.encoder[:MAX_TEXT_LEN]!r}, '
                                    f'the map was built by {self.store.encoder!r}')
        try:
            q = check_descriptor(req.descriptor, self.store.dim)
        except InputError as exc:
            return self._fail(resp, f'{exc} ({self.store.encoder})')
        k = int(req.k) or self.cfg.default_k
        if k > MAX_K:
            return self._fail(resp, f'k={k} is larger than the maximum {MAX_K}')
        scores, ids = self.store.search(q[None], k)
        valid = ids[0] >= 0
        resp.candidates = candidates_from_store(self.store, ids[0][valid], scores[0][valid])
        resp.success, resp.message = True, f'{len(resp.candidates)} candidates'
        return resp

    def _add_cb(self, req, resp):
        problem = self._unusable()
        if problem:
            return self._fail(resp, problem)
        key = req.request_id
        try:
            check_text(key, 'request_id')
            answer = self.store.request_answer(key) if key else None
        except Exception as exc:
            return self._fail(resp, f'keyframes refused, nothing written: {exc}')
        if answer is not None:  # a retry whose first answer was lost: answer it again
            resp.place_ids = [int(i) for i in answer[0]]
            resp.num_added, resp.num_skipped = len(answer[0]), int(answer[1])
            resp.success = True
            resp.message = (f'request_id {key!r} was already applied (added '
                            f'{resp.num_added}, skipped {resp.num_skipped}); nothing added again')
            self.log.info(resp.message)
            return resp
        if not req.keyframes:
            return self._fail(resp, 'no keyframes in the request')
        try:
            descs, places = keyframes_to_places(req.keyframes, self.store, self.cfg,
                                                self._encode_image)
            dedup = self._dedup_config() if req.deduplicate else None
            added, skipped = self.store.add(descs, places, dedup=dedup, request_id=key)
            if self.cfg.autosave:
                self.store.save()
        except Exception as exc:  # refused as a whole; the store rolls back its own state
            if self.cfg.autosave:
                self.store.discard_pending()  # added, but the save failed
            return self._fail(resp, f'keyframes refused, nothing written: {exc}')
        resp.place_ids = [int(i) for i in added]
        resp.num_added, resp.num_skipped = len(added), int(skipped)
        resp.success, resp.message = True, f'added {len(added)}, skipped {skipped} duplicates'
        self._publish_info()
        return resp

    def _save_cb(self, req, resp):
        problem = self._unusable()
        if problem:
            return self._fail(resp, problem)
        try:
            target = self._confine(req.path, 'save_map path') if req.path else None
            if target is not None and self.store.path.resolve() in target.parents:
                raise InputError(f'save_map path {req.path!r} is inside the map itself')
        except InputError as exc:
            return self._fail(resp, f'save refused, nothing written: {exc}')
        try:
            self.store.save(target)
        except Exception as exc:
            return self._fail(resp, f'save failed, previous version kept: {exc}')
        resp.success, resp.message = True, f'saved {target or self.store.path}'
        resp.num_places, resp.version = int(self.store.num_places), str(self.store.version)
        self._publish_info()
        return resp

    def _info_cb(self, _req, resp):
        problem = self._unusable()
        if problem:
            return self._fail(resp, problem)
        resp.info = map_info_from_store(self.store)
        resp.success, resp.message = True, ''
        return resp

    def _merge_cb(self, req, resp):
        problem = self._unusable()
        if problem:
            return self._fail(resp, problem)
        try:
            source = self._confine(req.path, 'merge_map path')
        except InputError as exc:
            return self._fail(resp, f'merge refused, nothing written: {exc}')
        try:
            added, skipped = self.store.merge(
                source, dedup=self._dedup_config() if req.deduplicate else None)
            if self.cfg.autosave:
                self.store.save()
        except Exception as exc:
            return self._fail(resp, f'merge of {req.path!r} refused, nothing written: {exc}')
        resp.num_added, resp.num_skipped = int(added), int(skipped)
        resp.success, resp.message = True, f'merged {added} places from {req.path}'
        self._publish_info()
        return resp

    # -- helpers -------------------------------------------------------------------------
    def _confine(self, path: str, what: str) -> Path:
        """``path`` resolved inside maps_root (InputError otherwise)."""
        if self.maps_root is None:
            raise InputError(f'{what} {path!r} refused: no maps_root (set the maps_root '
                             'parameter, or start with a map_path)')
        return confined_path(self.maps_root, path, what)

    def _dedup_config(self):
        from vpr_ros.mapstore import DedupConfig
        return DedupConfig(radius_m=self.cfg.dedup_radius_m, yaw_deg=self.cfg.dedup_yaw_deg,
                           similarity=self.cfg.dedup_similarity)

    def _encode_image(self, rgb: np.ndarray) -> np.ndarray:
        if not self.cfg.image_model and not self.cfg.image_checkpoint:
            raise ValueError('keyframe has no descriptor and this server has no image_model '
                             'to encode images')
        if self._image_encoder is None:
            from vpr_ros.models.runtime import load_encoder
            self._image_encoder = load_encoder(model=self.cfg.image_model,
                                               checkpoint=self.cfg.image_checkpoint)
        if self._image_encoder.name != self.store.encoder:
            raise ValueError(f'image_model {self._image_encoder.name!r} is not the map encoder '
                             f'{self.store.encoder!r}')
        return self._image_encoder.encode(rgb)[0]

    def diagnostics(self):
        """OK with the map's version and size, ERROR with the reason no map is loaded."""
        from vpr_ros.nodes.diagnostics import ERROR, OK
        store = getattr(self, 'store', None)
        if store is None:
            return ERROR, getattr(self, 'load_error', '') or 'no map loaded', {
                'map_path': self.cfg.map_path, 'map_loaded': False}
        return OK, f'serving {store.num_places} places', {
            'map_path': str(store.path), 'map_loaded': True, 'map_version': store.version,
            'places': store.num_places, 'encoder': store.encoder, 'dim': store.dim}


def main(args=None) -> None:
    run_component('gallery_server', GalleryServer, GalleryServerConfig, args)


if __name__ == '__main__':
    main()
