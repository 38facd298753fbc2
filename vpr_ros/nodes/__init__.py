"""ROS 2 nodes: thin wrappers that convert messages to numpy, call the core and convert back."""
