"""matcher node: query descriptors in, place matches and pose priors out.

The map is opened read-only and memory-mapped in this process (no service round trip per
frame); a new map version announced on vpr/map_info (or found by a periodic check) is loaded
without a restart.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from vpr_ros.config import MatcherConfig
from vpr_ros.msg import Descriptor, MapInfo, PlaceMatch
from vpr_ros.nodes.map_messages import candidates_from_store, pose_from_xyz_yaw
from vpr_ros.nodes.params import declare_config
from vpr_ros.nodes.qos import latched_qos
from vpr_ros.nodes.runner import run_node
from vpr_ros.retrieval import summarize_candidates


class MatcherNode(Node):
    def __init__(self, **kwargs):
        super().__init__('matcher', **kwargs)
        self.cfg = declare_config(self, MatcherConfig)
        self.store = None
        self._last_error = ''
        group = MutuallyExclusiveCallbackGroup()  # map reloads never race a search
        self.match_pub = self.create_publisher(PlaceMatch, self.cfg.match_topic, 10)
        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, self.cfg.pose_topic, 10)
        self.create_subscription(Descriptor, self.cfg.descriptor_topic, self._on_descriptor, 10,
                                 callback_group=group)
        self.create_subscription(MapInfo, 'vpr/map_info', lambda _m: self._refresh_map(),
                                 latched_qos(), callback_group=group)
        self.create_timer(max(self.cfg.map_reload_period_s, 0.1), self._refresh_map,
                          callback_group=group)
        self._refresh_map()

    def _refresh_map(self) -> None:
        from vpr_ros.mapstore import MapStore
        try:
            if self.store is None:
                self.store = MapStore.open(self.cfg.map_path)
                self.get_logger().info(f'matching against {self.cfg.map_path}: '
                                       f'{self.store.num_places} places ({self.store.encoder})')
            elif self.store.reload_if_changed():
                self.get_logger().info(f'map updated: {self.store.num_places} places, '
                                       f'version {self.store.version}')
            self._last_error = ''
        except Exception as exc:  # keep running; report once per distinct problem
            msg = f'cannot load map {self.cfg.map_path!r}: {exc}'
            if msg != self._last_error:
                self.get_logger().error(msg)
                self._last_error = msg

    def _on_descriptor(self, msg: Descriptor) -> None:
        if self.store is None:
            self.get_logger().warning(f'no map loaded, dropping descriptor: {self._last_error}',
                                      throttle_duration_sec=5.0)
            return
        q = np.asarray(msg.descriptor, dtype=np.float32)
        if q.size != self.store.dim or not np.all(np.isfinite(q)):
            self.get_logger().error(
                f'descriptor from {msg.encoder!r} has {q.size} values (finite: '
                f'{bool(np.all(np.isfinite(q)))}); the map expects {self.store.dim} finite values')
            return
        scores, ids = self.store.search(q[None], self.cfg.top_k)
        valid = ids[0] >= 0
        ids, scores = ids[0][valid], scores[0][valid]
        if ids.size == 0:
            return
        cfg = self.cfg
        prior = summarize_candidates(scores, self.store.positions(ids), self.store.yaws(ids),
                                     cfg.temperature, cfg.cluster_radius_m,
                                     cfg.base_position_std_m, cfg.base_yaw_std_rad)
        match = PlaceMatch()
        match.header.stamp = msg.header.stamp
        match.header.frame_id = cfg.frame_id
        match.encoder = msg.encoder
        match.candidates = candidates_from_store(self.store, ids, scores)
        match.confidence = float(prior.confidence)
        match.localized = bool(prior.confidence >= cfg.min_confidence)
        self.match_pub.publish(match)
        if match.localized or cfg.publish_unlocalized_prior:
            out = PoseWithCovarianceStamped()
            out.header = match.header
            out.pose.pose = pose_from_xyz_yaw(prior.x, prior.y, prior.z, prior.yaw)
            out.pose.covariance = prior.covariance.reshape(-1).astype(float).tolist()
            self.pose_pub.publish(out)


def main(args=None) -> None:
    run_node(MatcherNode, args)


if __name__ == '__main__':
    main()
