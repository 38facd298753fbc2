"""Geometric verification of retrieved places: local features stored with the map, matching and
RANSAC against the query's, re-ranking of the top-k, and the metric pose from verified views.
Pure Python + OpenCV; no ROS."""
