"""Localization graph: query_encoder -> matcher, with gallery_server serving the map.

ros2 launch vpr_ros localize.launch.py [params_file:=my.yaml] [use_sim_time:=true]
(Without a ROS distro: vpr-ros run localize, which starts the same nodes from the same YAML.)
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    params_file = LaunchConfiguration('params_file')
    use_sim_time = LaunchConfiguration('use_sim_time')
    default_params = PathJoinSubstitution([FindPackageShare('vpr_ros'), 'config',
                                           'localize.yaml'])
    common = [params_file, {'use_sim_time': use_sim_time}]
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='YAML with query_encoder/gallery_server/matcher'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='true when replaying bags with --clock'),
        Node(package='vpr_ros', executable='query_encoder', name='query_encoder',
             parameters=common, output='screen'),
        Node(package='vpr_ros', executable='gallery_server', name='gallery_server',
             parameters=common, output='screen'),
        Node(package='vpr_ros', executable='matcher', name='matcher',
             parameters=common, output='screen'),
    ])
