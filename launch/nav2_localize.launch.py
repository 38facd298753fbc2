"""vpr_ros as managed nodes under nav2_lifecycle_manager, optionally with Nav2 and
robot_localization.

ros2 launch vpr_ros nav2_localize.launch.py map_path:=/maps/town [nav2_map:=/maps/town.yaml]
    [with_nav2:=true] [with_ekf:=true] [use_sim_time:=true]

- vpr_ros nodes start unconfigured (--managed); a lifecycle manager configures and activates
  them (bond disabled: rclpy nodes have no bond).
- with_nav2 includes nav2_bringup's localization_launch.py (map_server + AMCL) when nav2_bringup
  is installed; the matcher then publishes `initialpose` on confident relocalizations.
- with_ekf starts robot_localization's ekf_node with config/robot_localization_example.yaml,
  which fuses vpr/pose_prior as pose0.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

VPR_NODES = ['query_encoder', 'gallery_server', 'matcher']


def _share(package):
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        return get_package_share_directory(package)
    except PackageNotFoundError:
        return None


def _setup(context):
    share = _share('vpr_ros')
    params = LaunchConfiguration('params_file').perform(context) or \
        os.path.join(share, 'config', 'localize.yaml')
    sim = LaunchConfiguration('use_sim_time').perform(context) == 'true'
    map_path = LaunchConfiguration('map_path').perform(context)
    with_nav2 = LaunchConfiguration('with_nav2').perform(context) == 'true'
    overrides = {'use_sim_time': sim}
    if map_path:
        overrides['map_path'] = map_path
    matcher_overrides = dict(overrides, output_mode='both' if with_nav2 else 'pose0')
    actions = [
        Node(package='vpr_ros', executable='query_encoder', name='query_encoder',
             arguments=['--managed'], parameters=[params, overrides], output='screen'),
        Node(package='vpr_ros', executable='gallery_server', name='gallery_server',
             arguments=['--managed'], parameters=[params, overrides], output='screen'),
        Node(package='vpr_ros', executable='matcher', name='matcher',
             arguments=['--managed'], parameters=[params, matcher_overrides], output='screen'),
        Node(package='nav2_lifecycle_manager', executable='lifecycle_manager',
             name='lifecycle_manager_vpr', output='screen',
             parameters=[{'node_names': VPR_NODES, 'autostart': True, 'bond_timeout': 0.0,
                          'use_sim_time': sim}]),
    ]
    nav2 = _share('nav2_bringup')
    if with_nav2 and nav2:
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(nav2, 'launch',
                                                       'localization_launch.py')),
            launch_arguments={'map': LaunchConfiguration('nav2_map').perform(context),
                              'use_sim_time': str(sim).lower(),
                              'params_file': os.path.join(share, 'config',
                                                          'nav2_amcl_example.yaml')}.items()))
    elif with_nav2:
        print('[vpr_ros] nav2_bringup is not installed: starting the vpr_ros nodes only')
    if LaunchConfiguration('with_ekf').perform(context) == 'true':
        if _share('robot_localization'):
            actions.append(Node(
                package='robot_localization', executable='ekf_node', name='ekf_filter_node',
                output='screen', parameters=[os.path.join(
                    share, 'config', 'robot_localization_example.yaml'), {'use_sim_time': sim}]))
        else:
            print('[vpr_ros] robot_localization is not installed: no EKF started')
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value='',
                              description='vpr_ros YAML (default: config/localize.yaml)'),
        DeclareLaunchArgument('map_path', default_value='', description='vpr_ros map dir'),
        DeclareLaunchArgument('nav2_map', default_value='', description='Nav2 map yaml'),
        DeclareLaunchArgument('with_nav2', default_value='true'),
        DeclareLaunchArgument('with_ekf', default_value='false'),
        DeclareLaunchArgument('use_sim_time', default_value='false'),
        OpaqueFunction(function=_setup),
    ])
