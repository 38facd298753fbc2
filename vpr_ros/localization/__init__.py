"""Temporal-consistency layer: from per-frame retrieval to localization (pure Python, no ROS).

``PlaceFilter`` (multi-hypothesis Bayes filter with localized/lost hysteresis), calibration of
its confidence, and a kidnapped-robot evaluation against single-frame retrieval.
"""
from vpr_ros.localization.calibration import (Calibration, expected_calibration_error,
                                              fit_calibration, reliability_bins,
                                              write_reliability_png)
from vpr_ros.localization.place_filter import FilterConfig, FilterEstimate, PlaceFilter

__all__ = ['Calibration', 'expected_calibration_error', 'fit_calibration', 'reliability_bins',
           'write_reliability_png', 'FilterConfig', 'FilterEstimate', 'PlaceFilter']
