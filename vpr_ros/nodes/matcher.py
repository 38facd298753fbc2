"""matcher node: query descriptors in, place matches, pose priors and a localization status out.

The map is opened read-only and memory-mapped in this process (no service round trip per
frame); a new map version announced on vpr/map_info (or found by a periodic check) is loaded
without a restart. A temporal filter (vpr_ros.localization) turns single-frame retrievals into
a consistent estimate; the prior goes to robot_localization continuously (output_mode pose0),
to AMCL's initialpose on confident relocalization events (initialpose), or both.
"""
from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from std_srvs.srv import Trigger

from vpr_ros.config import MatcherConfig
from vpr_ros.hubness import hubness_corrector, open_map, search_map
from vpr_ros.localization.tracking import LocalizationTracker
from vpr_ros.msg import Descriptor, LocalizationStatus, MapInfo, PlaceMatch
from vpr_ros.nodes.component import Component, run_component
from vpr_ros.nodes.conversions import stamp_seconds
from vpr_ros.nodes.map_messages import candidates_from_store, pose_from_xyz_yaw, yaw_of_pose
from vpr_ros.nodes.qos import latched_qos
from vpr_ros.validation import all_finite, check_descriptor, InputError, MAX_COORD_M, MAX_TEXT_LEN

OUTPUT_MODES = ('pose0', 'initialpose', 'both')
STATES = {'lost': LocalizationStatus.LOST, 'localizing': LocalizationStatus.LOCALIZING,
          'localized': LocalizationStatus.LOCALIZED}


class Matcher(Component):
    executor_threads = 1  # callbacks are serialised (mailbox / one callback group)

    def __init__(self, node, cfg: MatcherConfig):
        super().__init__(node, cfg)
        if cfg.output_mode not in OUTPUT_MODES:
            raise ValueError(f'output_mode {cfg.output_mode!r}: use one of {OUTPUT_MODES}')
        self.store = None
        self._last_error = ''
        self.tracker = LocalizationTracker(cfg)
        self._odom = None
        self._last_initialpose = -math.inf
        self.hubness = hubness_corrector(cfg)  # a bad file stops the node at start
        group = MutuallyExclusiveCallbackGroup()  # map reloads never race a search
        self.match_pub = self.publisher(PlaceMatch, cfg.match_topic, 10)
        self.status_pub = self.publisher(LocalizationStatus, cfg.status_topic, 10)
        self.pose_pub = self.publisher(PoseWithCovarianceStamped, cfg.pose_topic, 10)
        self.initialpose_pub = self.publisher(PoseWithCovarianceStamped, cfg.initialpose_topic,
                                              10) if cfg.output_mode != 'pose0' else None
        self.subscription(Descriptor, cfg.descriptor_topic, self._on_descriptor, 10,
                          callback_group=group)
        self.subscription(MapInfo, 'vpr/map_info', lambda _m: self._refresh_map(),
                          latched_qos(), callback_group=group)
        if cfg.odom_topic:
            self.subscription(Odometry, cfg.odom_topic, self._on_odom, 50, callback_group=group)
        self.service(Trigger, 'vpr/trigger_relocalization', self._on_trigger,
                     callback_group=group)
        self.timer(max(cfg.map_reload_period_s, 0.1), self._refresh_map, callback_group=group)
        self._refresh_map()

    def _refresh_map(self) -> None:
        try:
            if self.store is None:
                self.store = open_map(self.cfg.map_path, self.hubness)
                self.log.info(f'matching against {self.cfg.map_path}: '
                              f'{self.store.num_places} places ({self.store.encoder})'
                              + (' with the hubness correction' if self.hubness else ''))
            elif self.store.reload_if_changed():
                if self.hubness is not None:
                    self.hubness.reset()  # ids may now name other entries
                self.log.info(f'map updated: {self.store.num_places} places, '
                              f'version {self.store.version}')
            self._last_error = ''
        except Exception as exc:  # keep running; report once per distinct problem
            msg = f'cannot load map {self.cfg.map_path!r}: {exc}'
            if msg != self._last_error:
                self.log.error(msg)
                self._last_error = msg

    def _on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        self._odom = (p.position.x, p.position.y, yaw_of_pose(p))

    def _on_trigger(self, _req, resp):
        self.tracker.reset()
        self._last_initialpose = -math.inf  # the next relocalization is published at once
        resp.success, resp.message = True, 'relocalization requested: hypotheses cleared'
        self.log.info(resp.message)
        return resp

    def _on_descriptor(self, msg: Descriptor) -> None:
        if not self.active:
            return
        if self.store is None:
            self.log.warning(f'no map loaded, dropping descriptor: {self._last_error}',
                             throttle_duration_sec=5.0)
            return
        if not self._encoder_accepted(msg.encoder):
            return
        try:
            q = check_descriptor(msg.descriptor, self.store.dim)
        except InputError as exc:
            self.log.error(f'descriptor from {msg.encoder!r} refused: {exc}',
                           throttle_duration_sec=5.0)
            return
        made_for = self.hubness.meta.get('encoder') if self.hubness is not None else None
        if made_for and msg.encoder != made_for:
            self.log.warning(f'descriptors from {msg.encoder!r}, but hubness_reference was made '
                             f'for {made_for!r}: its biases do not fit this query network',
                             throttle_duration_sec=10.0)
        scores, ids = search_map(self.store, q, self.cfg.top_k, self.hubness)
        positions = self.store.positions(ids)
        sane = np.all(np.isfinite(positions) & (np.abs(positions) <= MAX_COORD_M), axis=1)
        if not np.all(sane):
            self.log.error(f'map places {ids[~sane].tolist()} have positions beyond '
                           f'{MAX_COORD_M:g} m or not finite: ignored (repair the map)',
                           throttle_duration_sec=10.0)
            ids, scores, positions = ids[sane], scores[sane], positions[sane]
        if ids.size == 0:
            return
        stamp_s = stamp_seconds(msg.header.stamp)
        try:
            est = self.tracker.step(stamp_s, scores, positions, self.store.yaws(ids),
                                    self._odom, self.store.num_places)
        except Exception as exc:  # one bad frame never takes the node down
            est, problem = None, f'{type(exc).__name__}: {exc}'
        else:
            problem = '' if all_finite(est.x, est.y, est.yaw, est.covariance, est.confidence) \
                else 'non-finite pose or covariance'
        if problem:
            self.tracker.reset()  # the filter state may hold the bad values
            self.log.error(f'frame stamped {stamp_s:.3f} skipped, filter reset: {problem}',
                           throttle_duration_sec=5.0)
            return
        self._publish(msg, stamp_s, ids, scores, est)

    def _encoder_accepted(self, encoder: str) -> bool:
        """The map's encoder, the hubness reference's query network or one listed in
        accepted_encoders; anything else is refused with a (throttled) error."""
        accepted = {self.store.encoder, *self.cfg.accepted_encoders}
        if self.hubness is not None and self.hubness.meta.get('encoder'):
            accepted.add(self.hubness.meta['encoder'])
        if encoder in accepted or '*' in accepted:
            return True
        self.log.error(f'descriptor from encoder {encoder[:MAX_TEXT_LEN]!r} refused: the map '
                       f'was built by {self.store.encoder!r} and accepted_encoders is '
                       f'{list(self.cfg.accepted_encoders)}; if {encoder[:MAX_TEXT_LEN]!r} is '
                       'a query network trained for this map, add it to the matcher parameter '
                       'accepted_encoders', throttle_duration_sec=5.0)
        return False

    def _publish(self, msg, stamp_s: float, ids, scores, est) -> None:
        cfg = self.cfg
        match = PlaceMatch()
        match.header.stamp, match.header.frame_id = msg.header.stamp, cfg.frame_id
        match.encoder = msg.encoder
        match.candidates = candidates_from_store(self.store, ids, scores)
        match.confidence, match.localized = float(est.confidence), bool(est.localized)
        self.match_pub.publish(match)
        status = LocalizationStatus(state=STATES[est.status], confidence=float(est.confidence),
                                    num_hypotheses=int(est.num_hypotheses),
                                    relocalized=bool(est.relocalized), message=est.status)
        status.header = match.header
        self.status_pub.publish(status)
        prior = PoseWithCovarianceStamped()
        prior.header = match.header
        prior.pose.pose = pose_from_xyz_yaw(est.x, est.y, 0.0, est.yaw)
        prior.pose.covariance = np.asarray(est.covariance, float).reshape(-1).tolist()
        if cfg.output_mode != 'initialpose' and (est.localized or cfg.publish_unlocalized_prior):
            self.pose_pub.publish(prior)
        if (self.initialpose_pub is not None and est.relocalized
                and stamp_s - self._last_initialpose >= cfg.initialpose_min_interval_s):
            self._last_initialpose = stamp_s
            self.initialpose_pub.publish(prior)
            self.log.info(f'relocalized at ({est.x:.1f}, {est.y:.1f}) confidence '
                          f'{est.confidence:.2f}: published {cfg.initialpose_topic}')


def main(args=None) -> None:
    run_component('matcher', Matcher, MatcherConfig, args)


if __name__ == '__main__':
    main()
