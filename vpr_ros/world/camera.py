"""Camera poses and the view/projection matrices (map frame: x east, y north, z up)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class CameraPose:
    """Camera position (m) and orientation: yaw CCW from +x (east), pitch up, radians."""

    x: float
    y: float
    z: float = 2.0
    yaw: float = 0.0
    pitch: float = 0.0

    def forward(self) -> np.ndarray:
        """Unit viewing direction."""
        cp = math.cos(self.pitch)
        return np.array([math.cos(self.yaw) * cp, math.sin(self.yaw) * cp, math.sin(self.pitch)])

    @property
    def heading_deg(self) -> float:
        """Compass heading, degrees clockwise from north in [0, 360)."""
        return (90.0 - math.degrees(self.yaw)) % 360.0


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World -> camera (OpenGL convention: camera looks along -z)."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    f = target - eye
    f /= np.linalg.norm(f)
    if abs(np.dot(f, up)) > 0.999:
        up = np.array([0.0, 1.0, 0.0])
    s = np.cross(f, up)
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def perspective(fovy_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL perspective projection."""
    f = 1.0 / math.tan(math.radians(fovy_deg) / 2)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = f / aspect, f
    m[2, 2], m[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def orthographic(half: float, near: float, far: float) -> np.ndarray:
    """Square orthographic projection of +-half metres."""
    m = np.eye(4)
    m[0, 0] = m[1, 1] = 1.0 / half
    m[2, 2], m[2, 3] = -2.0 / (far - near), -(far + near) / (far - near)
    return m


def gl_bytes(m: np.ndarray) -> bytes:
    """A numpy (row-major) 4x4 matrix as the column-major float32 bytes GLSL expects."""
    return np.ascontiguousarray(m.T, dtype=np.float32).tobytes()
