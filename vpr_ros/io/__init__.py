"""Readers and writers of image/pose data: ROS image encodings, VG folders, rosbags."""
