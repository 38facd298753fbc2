"""One localizer: the matcher's per-frame logic, shared by the node and every evaluation.

``Localizer(cfg)`` (cfg: vpr_ros.config.MatcherConfig) opens a map with the hubness correction
the settings name, and turns each query descriptor into a ``Match``: the top-k places (read from
the store once per frame) and the estimate of the tracker (single-frame or the temporal filter,
with calibration). The matcher node, ``vpr-ros evaluate`` and ``vpr-ros kidnap-eval`` all step
it, so offline results equal live ones by construction and a per-frame setting is added here.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from vpr_ros.hubness import hubness_corrector, open_map, search_map
from vpr_ros.localization.similarity import (levels_for, map_levels, NO_LEVELS,
                                             relative_similarity)
from vpr_ros.localization.tracking import Estimate, LocalizationTracker
from vpr_ros.retrieval import UNOBSERVED_VARIANCE
from vpr_ros.validation import all_finite, MAX_COORD_M


@dataclasses.dataclass
class Match:
    """One frame: its candidates (best first) and the estimate made from the top_k of them."""

    stamp: float
    ids: np.ndarray               # (k,) map place ids
    scores: np.ndarray            # (k,) similarity (hubness-corrected when configured)
    positions: np.ndarray         # (k, 3) map frame
    yaws: np.ndarray              # (k,)
    places: list                  # (k,) PlaceRecord (lat/lon, robot, session ...)
    estimate: Optional[Estimate]  # None: no candidates, or the frame was skipped
    problem: str = ''             # why the estimate is None or not localized
    query: Optional[np.ndarray] = None  # the descriptor searched (None: given candidates)
    inliers: Optional[np.ndarray] = None  # (k,) RANSAC inliers per candidate, -1 unverified
    pose_source: str = 'place'    # place | verified | metric: what the estimate's pose is
    metric: object = None         # verification.metric_pose.MetricPose of the frame, or None
    verify_ms: float = 0.0        # matching + RANSAC (+ metric pose) time of the frame
    searched_best: Optional[float] = None  # best similarity before verification re-scored


class Localizer:
    """Map + hubness correction + tracker of one robot (one matcher)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.tracker = LocalizationTracker(cfg)
        self.hubness = hubness_corrector(cfg)  # a bad reference file raises here
        self.store = None
        self.levels = NO_LEVELS
        self.query_encoder = ''    # network of the descriptors searched ('' = the map's own)
        self.levels_note = ''      # why the similarity floor is off, if it is
        self._own_levels = None    # the map's own levels, measured on open / reload
        self.verifier = None       # set when cfg.verify and the map has local features
        self.verify_problem = ''   # why verification is off for a map that has features

    def open(self, map_path: str = '') -> 'Localizer':
        """Open ``map_path`` (default: cfg.map_path) read-only, closing a map already open."""
        store = open_map(map_path or self.cfg.map_path, self.hubness)
        self.close()
        self.store = store
        self._set_levels(measure=True)
        self._open_features()
        return self

    def use_query_network(self, encoder: str) -> None:
        """Descriptors come from ``encoder`` (default: the map's own model): the similarity
        levels (floor, calibration's similarity) follow it (similarity.levels_for)."""
        self.query_encoder = encoder or ''
        if self.store is not None:
            self._set_levels()

    def _set_levels(self, measure: bool = False) -> None:
        """Levels for ``query_encoder``; the map's own are measured only on open / reload
        (``measure``), so a frame never reads the descriptor files."""
        if measure or self._own_levels is None:
            self._own_levels = map_levels(self.store)
        self.levels, self.levels_note = levels_for(self.store, self.query_encoder,
                                                   self._own_levels)

    def _open_features(self) -> None:
        """The map's local features for verification (cfg.verify); a damaged file turns
        verification off and says why in ``verify_problem`` (the map still localizes)."""
        self.verifier, self.verify_problem = None, ''
        if not getattr(self.cfg, 'verify', False):
            return
        from vpr_ros.verification.store import LocalFeatureError, LocalFeatureStore
        from vpr_ros.verification.verifier import Verifier, VerifySettings
        try:
            features = LocalFeatureStore.load(self.store.path)
        except LocalFeatureError as exc:
            self.verify_problem = f'geometric verification off: {exc}'
            return
        if features is not None:
            self.verifier = Verifier(features, VerifySettings.of(self.cfg))

    @property
    def verifying(self) -> bool:
        """Whether frames given local features are verified (cfg.verify, features in map)."""
        return self.verifier is not None

    def query_features(self, rgb: np.ndarray):
        """The local features of a query image for ``step(..., local=)`` (None when the map
        is not verified): extracted as the map's were."""
        return self.verifier.extract(rgb) if self.verifier is not None else None

    @property
    def similarity_floor(self) -> float:
        """Best-match cosine below which a frame is unrecognised (cfg.min_similarity, or the
        map's own level when it is -1)."""
        m = self.cfg.min_similarity
        return self.levels.floor if m == -1.0 else float(m)

    def reload_if_changed(self) -> bool:
        """Load a newer saved version of the open map; True if it changed."""
        if self.store is None or not self.store.reload_if_changed():
            return False
        if self.hubness is not None:
            self.hubness.reset()  # ids may now name other entries
        self._set_levels(measure=True)
        self._open_features()
        return True

    def reset(self) -> None:
        """Forget the past (one-shot global relocalization)."""
        self.tracker.reset()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def search(self, descriptor: np.ndarray, stamp: float, k: int = 0) -> Match:
        """The top max(k, top_k) places of ``descriptor``, without an estimate."""
        k = max(int(k), self.cfg.top_k)
        q = np.asarray(descriptor, np.float32).ravel()
        scores, ids = search_map(self.store, q, k, self.hubness)
        match = self.candidates(stamp, ids, scores)
        match.query = q
        return match

    def candidates(self, stamp: float, ids, scores) -> Match:
        """A Match of given candidates (rows with impossible positions dropped, said why)."""
        ids = np.asarray(ids, np.int64).ravel()
        scores = np.asarray(scores, np.float64).ravel()
        valid = ids >= 0  # faiss pads with -1 when the map has fewer than k places
        ids, scores = ids[valid], scores[valid]
        places = self.store.get_places(ids) if ids.size else []
        positions = np.array([(p.x, p.y, p.z) for p in places], np.float64).reshape(-1, 3)
        yaws = np.array([p.yaw for p in places], np.float64)
        sane = np.all(np.isfinite(positions) & (np.abs(positions) <= MAX_COORD_M), axis=1)
        problem = ''
        if not np.all(sane):
            problem = (f'map places {ids[~sane].tolist()} have positions beyond '
                       f'{MAX_COORD_M:g} m or not finite: ignored (repair the map)')
            keep = np.flatnonzero(sane)
            ids, scores, positions, yaws = ids[keep], scores[keep], positions[keep], yaws[keep]
            places = [places[i] for i in keep]
        return Match(float(stamp), ids, scores, positions, yaws, places, None, problem)

    def step(self, descriptor: np.ndarray, stamp: float, odom=None, k: int = 0,
             odom_delta: Optional[Sequence[float]] = None, local=None,
             query_K=None) -> Match:
        """Search, verify (when ``local``, the query's LocalFeatures, is given and the map has
        features), then update the tracker with the top_k candidates. ``odom``: the robot's
        (x, y, yaw) odometry pose at the frame; or ``odom_delta``: its motion since the last
        frame in the robot frame; ``query_K``: the query camera's (3, 3) intrinsics (default:
        the map's, for a query image of the map images' size)."""
        match = self.verify(self.search(descriptor, stamp, k), local, query_K)
        return self.estimate(match, odom, odom_delta)

    def verify(self, match: Match, local, query_K=None) -> Match:
        """Re-rank ``match`` by geometric verification of its first verify_top_k candidates
        against ``local`` (and estimate the metric pose when cfg.metric_pose)."""
        if self.verifier is None or local is None or match.ids.size == 0:
            return match
        from vpr_ros.verification.verifier import metric_pose_of
        match.searched_best = self._plain_similarity(match)  # the floor test's, unverified
        v = self.verifier.verify(match.ids, match.scores, local)
        o = v.order
        match.ids, match.positions, match.yaws = match.ids[o], match.positions[o], match.yaws[o]
        match.places = [match.places[i] for i in o]
        match.scores, match.inliers, match.verify_ms = v.scores, v.inliers, v.ms
        if getattr(self.cfg, 'metric_pose', False):
            match.metric, ms = metric_pose_of(v, match, self.verifier, local, query_K)
            match.verify_ms += ms
        return match

    def _plain_similarity(self, match: Match) -> float:
        """Cosine of the query to its best candidate: the search's own top score, unless the
        hubness correction re-scored it (then the stored descriptor is read once)."""
        if match.searched_best is not None:  # verification re-ranked and re-scored
            return match.searched_best
        if self.hubness is None or match.query is None:
            return float(match.scores[0])
        return float(self.store.descriptors_of(match.ids[:1])[0] @ match.query)

    def estimate(self, match: Match, odom=None,
                 odom_delta: Optional[Sequence[float]] = None) -> Match:
        """Fill ``match.estimate`` from its top_k candidates (the tracker steps once)."""
        if match.ids.size == 0:
            return match
        best = self._plain_similarity(match)
        if best < self.similarity_floor:
            match.problem = (f'unrecognised frame: best similarity {best:.3f} is below '
                             f'{self.similarity_floor:.3f} (min_similarity)')
            match.estimate = unrecognised(match)
            return match
        top = slice(0, self.cfg.top_k)
        try:
            est = self.tracker.step(match.stamp, match.scores[top], match.positions[top],
                                    match.yaws[top], odom, self.store.num_places,
                                    motion=odom_delta,
                                    similarity=relative_similarity(best, self.levels))
        except Exception as exc:  # one bad frame never takes the localizer down
            est, problem = None, f'{type(exc).__name__}: {exc}'
        else:
            problem = '' if all_finite(est.x, est.y, est.yaw, est.covariance,
                                       est.confidence) else 'non-finite pose or covariance'
        if problem:
            self.tracker.reset()  # the filter state may hold the bad values
            match.problem = '; '.join(p for p in (match.problem, problem) if p)
            return match
        match.estimate = est
        # verified: the best candidate's inlier bonus is full (false candidates of the held-out
        # towns reach about 10 inliers, right ones 10-20 under condition changes)
        if match.inliers is not None and match.inliers[0] >= max(self.cfg.min_inliers,
                                                                 self.cfg.inlier_saturation):
            match.pose_source = 'verified'
        if match.metric is not None:
            from vpr_ros.verification.verifier import with_metric_pose
            match.estimate, match.pose_source = with_metric_pose(est, match.metric), 'metric'
        return match


def unrecognised(match: Match) -> Estimate:
    """The estimate of a frame that matches nothing in the map: at its best candidate, not
    localized, zero confidence, uninformative covariance; the tracker is left as it was."""
    cov = np.diag([UNOBSERVED_VARIANCE] * 6)
    return Estimate(float(match.positions[0, 0]), float(match.positions[0, 1]),
                    float(match.yaws[0]), cov, 0.0, False, False, 'lost', 0, 0.0)
