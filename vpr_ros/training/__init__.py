"""Training of query networks (AsymVPR asymmetric training, D2-VPR distillation). No ROS."""
