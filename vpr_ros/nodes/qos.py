"""QoS profiles used by vpr_ros (Nav2 conventions)."""
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


def latched_qos() -> QoSProfile:
    """Map-like outputs: reliable, transient local, depth 1 (late joiners get the last one)."""
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
