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
from vpr_ros.localization.frames import base_from_camera, OdomBuffer
from vpr_ros.localization.localizer import Localizer
from vpr_ros.mapstore.manifest import MapError
from vpr_ros.msg import Descriptor, LocalizationStatus, MapInfo, PlaceMatch
from vpr_ros.nodes.component import Component, run_component
from vpr_ros.nodes.conversions import stamp_seconds
from vpr_ros.nodes.map_messages import candidates_from_places, pose_from_xyz_yaw, yaw_of_pose
from vpr_ros.nodes.qos import latched_qos
from vpr_ros.nodes.status_timer import add_status_heartbeat
from vpr_ros.shipped_queries import accepted_query_networks
from vpr_ros.validation import check_descriptor, InputError, MAX_TEXT_LEN

OUTPUT_MODES = ('pose0', 'initialpose', 'both')
POSE_SOURCES = {'place': PlaceMatch.PLACE, 'verified': PlaceMatch.VERIFIED,
                'metric': PlaceMatch.METRIC}
STATES = {'lost': LocalizationStatus.LOST, 'localizing': LocalizationStatus.LOCALIZING,
          'localized': LocalizationStatus.LOCALIZED}


class Matcher(Component):
    executor_threads = 1  # callbacks are serialised (mailbox / one callback group)

    def __init__(self, node, cfg: MatcherConfig):
        super().__init__(node, cfg)
        if cfg.output_mode not in OUTPUT_MODES:
            raise ValueError(f'output_mode {cfg.output_mode!r}: use one of {OUTPUT_MODES}')
        self._last_error = ''
        self.localizer = Localizer(cfg)  # a bad hubness reference stops the node at start
        self._odom = OdomBuffer()  # odometry interpolated at each image's stamp
        self._last_initialpose = self._last_set_pose = -math.inf
        group = MutuallyExclusiveCallbackGroup()  # map reloads never race a search
        self.match_pub = self.publisher(PlaceMatch, cfg.match_topic, 10)
        self.status_pub = self.publisher(LocalizationStatus, cfg.status_topic, 10)
        self.pose_pub = self.publisher(PoseWithCovarianceStamped, cfg.pose_topic, 10)
        add_status_heartbeat(self, cfg.status_timeout_s)  # vpr/status >= 1 Hz, LOST on timeout
        self.initialpose_pub = self.publisher(PoseWithCovarianceStamped, cfg.initialpose_topic,
                                              10) if cfg.output_mode != 'pose0' else None
        self.set_pose_pub = self.publisher(PoseWithCovarianceStamped, cfg.set_pose_topic,
                                           10) if cfg.set_pose_topic else None
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

    @property
    def store(self):
        return self.localizer.store

    @property
    def hubness(self):
        return self.localizer.hubness

    def _refresh_map(self) -> None:
        try:
            if self.store is None:
                self.localizer.open()
                self.log.info(f'matching against {self.cfg.map_path}: '
                              f'{self.store.num_places} places ({self.store.encoder})'
                              + (' with the hubness correction' if self.hubness else '')
                              + (', verifying the top-k' if self.localizer.verifying else ''))
                if self.localizer.verify_problem:
                    self.log.warning(self.localizer.verify_problem)
            elif self.localizer.reload_if_changed():
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
        self._odom.add(stamp_seconds(msg.header.stamp),
                       (p.position.x, p.position.y, yaw_of_pose(p)))

    def _on_trigger(self, _req, resp):
        self.localizer.reset()
        # the next relocalization is published at once
        self._last_initialpose = self._last_set_pose = -math.inf
        resp.success, resp.message = True, 'relocalization requested: hypotheses cleared'
        self.log.info(resp.message)
        return resp

    def _on_descriptor(self, msg: Descriptor) -> None:
        if not self.active:
            return
        if self.store is None:
            self.log.warning(f'no map loaded, dropping descriptor: {self._last_error}',
                             throttle_duration_sec=5.0)
            self.descriptors_refused += 1
            return
        if not self._encoder_accepted(msg.encoder):
            self.descriptors_refused += 1
            return
        try:
            q = check_descriptor(msg.descriptor, self.store.dim)
        except InputError as exc:
            self.log.error(f'descriptor from {msg.encoder!r} refused: {exc}',
                           throttle_duration_sec=5.0)
            self.descriptors_refused += 1
            return
        made_for = self.hubness.meta.get('encoder') if self.hubness is not None else None
        if made_for and msg.encoder != made_for:
            self.log.warning(f'descriptors from {msg.encoder!r}, but hubness_reference was made '
                             f'for {made_for!r}: its biases do not fit this query network',
                             throttle_duration_sec=10.0)
        if msg.encoder != self.localizer.query_encoder:  # levels of this network's space
            self.localizer.use_query_network(msg.encoder)
            if self.localizer.levels_note:
                self.log.warning(self.localizer.levels_note)
        stamp_s = stamp_seconds(msg.header.stamp)
        local = self._local_features(msg)
        metric = local is not None and self.cfg.metric_pose
        query_K = self._query_camera_k(msg) if metric else None
        try:
            match = self.localizer.step(q, stamp_s, self._odom.at(stamp_s), local=local,
                                        query_K=query_K)
        except MapError as exc:  # map files damaged on disk: the frame is lost, not the node
            self.frame_errors += 1
            self.log.error(f'frame stamped {stamp_s:.3f} dropped: {exc}',
                           throttle_duration_sec=5.0)
            return
        if match.problem and match.estimate is not None:  # an unrecognised frame
            self.log.warning(f'frame stamped {stamp_s:.3f}: {match.problem}',
                             throttle_duration_sec=5.0)
        elif match.problem:
            self.frame_errors += 1
            self.log.error(f'frame stamped {stamp_s:.3f}: {match.problem}',
                           throttle_duration_sec=5.0)
        if match.estimate is not None:
            self._publish(msg, stamp_s, match)

    def _local_features(self, msg: Descriptor):
        """The frame's local features for verification (None: not sent, map without them,
        or unusable: said once per 10 s)."""
        if not msg.local_method or not self.localizer.verifying:
            return None
        from vpr_ros.verification.wire import unpack
        try:
            return unpack(msg.local_method, msg.keypoints, msg.local_descriptors,
                          msg.image_width, msg.image_height, self.localizer.verifier.method)
        except ValueError as exc:
            self.log.warning(f'frame not verified: {exc}', throttle_duration_sec=10.0)
            return None

    def _query_camera_k(self, msg: Descriptor):
        """The query camera's (3, 3) K from ``msg.camera_k`` for the metric pose; None when
        unknown (all zeros) or unusable (warned about once): the map camera's is used then."""
        from vpr_ros.verification.camera_k import decode_camera_k
        K, problem = decode_camera_k(msg.camera_k)
        if problem and not self._camera_k_warned:
            self._camera_k_warned = True
            self.log.warning(f'descriptor from {msg.encoder[:MAX_TEXT_LEN]!r}: {problem}; the '
                             "map camera's intrinsics are used for the metric pose (said once)")
        return K

    def _encoder_accepted(self, encoder: str) -> bool:
        """The map's encoder, a query network shipped for it, the hubness reference's query
        network or one listed in accepted_encoders; anything else is refused with a (throttled)
        error."""
        accepted = {self.store.encoder, *self.cfg.accepted_encoders,
                    *accepted_query_networks(self.store.encoder)}
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

    def _publish(self, msg, stamp_s: float, found) -> None:
        cfg, est = self.cfg, found.estimate
        match = PlaceMatch()
        match.header.stamp, match.header.frame_id = msg.header.stamp, cfg.frame_id
        match.encoder = msg.encoder
        match.candidates = candidates_from_places(found.places, found.scores)
        match.confidence, match.localized = float(est.confidence), bool(est.localized)
        match.pose_source = POSE_SOURCES[found.pose_source]
        match.inliers = int(found.inliers[0]) if found.inliers is not None else -1
        self.match_pub.publish(match)
        status = LocalizationStatus(state=STATES[est.status], confidence=float(est.confidence),
                                    num_hypotheses=int(est.num_hypotheses),
                                    relocalized=bool(est.relocalized), message=est.status)
        status.header = match.header
        self.status_pub.publish(status)
        prior = PoseWithCovarianceStamped()
        prior.header = match.header
        # the map holds camera poses; the stack wants base_link (covariance kept: the mount's
        # lever arm is small against the place-level position uncertainty)
        x, y, yaw = base_from_camera((est.x, est.y, est.yaw),
                                     (cfg.camera_x_m, cfg.camera_y_m, cfg.camera_yaw_rad))
        prior.pose.pose = pose_from_xyz_yaw(x, y, 0.0, yaw)
        prior.pose.covariance = np.asarray(est.covariance, float).reshape(-1).tolist()
        if cfg.output_mode != 'initialpose' and (est.localized or cfg.publish_unlocalized_prior):
            self.pose_pub.publish(prior)
        if (self.initialpose_pub is not None and est.relocalized
                and stamp_s - self._last_initialpose >= cfg.initialpose_min_interval_s):
            self._last_initialpose = stamp_s
            self.initialpose_pub.publish(prior)
            self.log.info(f'relocalized at ({x:.1f}, {y:.1f}) confidence '
                          f'{est.confidence:.2f}: published {cfg.initialpose_topic}')
        if (self.set_pose_pub is not None and est.relocalized
                and stamp_s - self._last_set_pose >= cfg.initialpose_min_interval_s):
            # robot_localization's set_pose resets the EKF at the relocalized pose, which its
            # pose0 gate (pose0_rejection_threshold) would otherwise refuse for good
            self._last_set_pose = stamp_s
            self.set_pose_pub.publish(prior)
            self.log.info(f'relocalized at ({x:.1f}, {y:.1f}): published {cfg.set_pose_topic}')

    # counters of diagnostics() (an increment makes them instance attributes)
    descriptors_refused = 0
    frame_errors = 0
    _camera_k_warned = False  # an unusable camera_k is logged once

    def diagnostics(self):
        """Map version and size, localized/lost, age of the last prior, refused descriptors and
        failed frames (WARN when new ones came since the last report)."""
        from vpr_ros.nodes.diagnostics import ERROR, OK, WARN
        names = {LocalizationStatus.LOST: 'lost', LocalizationStatus.LOCALIZING: 'localizing',
                 LocalizationStatus.LOCALIZED: 'localized'}
        store, status_pub = getattr(self, 'store', None), getattr(self, 'status_pub', None)
        last = getattr(status_pub, 'last', None)
        prior_age = getattr(getattr(self, 'pose_pub', None), 'age', lambda: None)()
        silence = status_pub.silence() if hasattr(status_pub, 'silence') else None
        refused, errors = self.descriptors_refused, self.frame_errors
        new_refused, new_errors = (refused - getattr(self, '_diag_seen', (0, 0))[0],
                                   errors - getattr(self, '_diag_seen', (0, 0))[1])
        self._diag_seen = (refused, errors)
        state = names.get(last.state, str(last.state)) if last is not None else 'lost'
        values = {'map_path': self.cfg.map_path,
                  'map_version': getattr(store, 'version', '') if store is not None else '',
                  'places': int(getattr(store, 'num_places', 0)) if store is not None else 0,
                  'state': state,
                  'confidence': float(last.confidence) if last is not None else 0.0,
                  'last_descriptor_age_s': round(silence, 2) if last is not None else '',
                  'last_prior_age_s': round(prior_age, 2) if prior_age is not None else '',
                  'descriptors_refused': refused, 'frame_errors': errors}
        problem = getattr(self, '_last_error', '')
        if store is None:
            return ERROR, problem or 'no map loaded', values
        if new_refused or new_errors:
            return WARN, (f'{new_refused} descriptors refused, {new_errors} frames failed '
                          'since the last report (see the log)'), values
        if problem:
            return WARN, problem, values
        if getattr(status_pub, 'lost_by_timeout', False):
            values['state'] = 'lost'
            return WARN, ('lost: no descriptor yet' if last is None else
                          f'lost: no descriptor for {silence:.1f} s'), values
        level = WARN if state == 'lost' else OK
        return level, f'{state} (confidence {values["confidence"]:.2f})', values


def main(args=None) -> None:
    run_component('matcher', Matcher, MatcherConfig, args)


if __name__ == '__main__':
    main()
