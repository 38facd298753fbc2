"""A robot of the fleet test: submits keyframes to the gallery server in batches (own process)."""
import math
import sys

import numpy as np
import rclpy
from geometry_msgs.msg import Pose

from vpr_ros.msg import Keyframe
from vpr_ros.srv import AddPlaces


def keyframe_descriptor(robot: int, i: int, dim: int) -> np.ndarray:
    """The deterministic descriptor of keyframe ``i`` of ``robot`` (tests recompute it)."""
    d = np.random.default_rng(robot * 100_000 + i).standard_normal(dim).astype(np.float32)
    return d / np.linalg.norm(d)


def main(robot: int, count: int, batch: int, dim: int, encoder: str) -> int:
    rclpy.init()
    node = rclpy.create_node(f'fleet_robot_{robot}')
    client = node.create_client(AddPlaces, 'vpr/add_places')
    if not client.wait_for_service(timeout_sec=60.0):
        print('service not available', file=sys.stderr)
        return 2
    added = 0
    for start in range(0, count, batch):
        req = AddPlaces.Request(deduplicate=True)
        for i in range(start, min(start + batch, count)):
            kf = Keyframe(robot_id=f'robot{robot}', session='s1', encoder=encoder,
                          descriptor=keyframe_descriptor(robot, i, dim).tolist(),
                          latitude=math.nan, longitude=math.nan)
            kf.header.frame_id = 'map'
            kf.pose = Pose()
            kf.pose.position.x, kf.pose.position.y = float(robot * 10_000 + i * 5), 0.0
            kf.pose.orientation.w = 1.0
            req.keyframes.append(kf)
        future = client.call_async(req)
        rclpy.spin_until_future_complete(node, future, timeout_sec=120.0)
        res = future.result()
        if res is None or not res.success:
            print(f'robot {robot}: add failed: {res and res.message}', file=sys.stderr)
            return 1
        added += res.num_added
    print(f'robot {robot}: added {added}', flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0 if added == count else 3


if __name__ == '__main__':
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                  sys.argv[5]))
