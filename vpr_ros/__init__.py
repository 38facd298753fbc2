"""vpr_ros: asymmetric visual place recognition for ROS 2.

The pure-Python core (models, training, map store, retrieval, metrics, bag reading) lives in this
package and never imports rclpy; the ROS 2 nodes live in :mod:`vpr_ros.nodes`.
"""
# The rosidl-generated interfaces (vpr_ros.msg, vpr_ros.srv) are installed into another
# site-packages folder under the same package name; extend_path lets both halves import.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = '0.1.0'
