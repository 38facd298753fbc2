"""vpr_ros as managed (lifecycle) nodes, optionally with Nav2 (map_server + AMCL) and
robot_localization's EKF.

    ros2 launch vpr_ros nav2_localize.launch.py map:=/maps/town
        [with_nav2:=true nav2_map:=/maps/town.yaml] [with_ekf:=true] [namespace:=robot1]
        [params_file:=my.yaml] [output_mode:=both] [use_sim_time:=true] [use_respawn:=true]

- The vpr_ros nodes start unconfigured and are configured and activated by
  nav2_lifecycle_manager when it is installed (bond off: rclpy nodes have no bond), otherwise by
  vpr_ros's own lifecycle driver; a LogInfo says which.
- with_nav2 includes nav2_bringup's localization_launch.py (map_server + AMCL) and needs an
  occupancy map (nav2_map); without nav2_bringup installed it is skipped with a LogInfo.
- with_ekf starts robot_localization's ekf_node with config/robot_localization_example.yaml,
  fusing vpr/pose_prior as pose0.
- One owner of map->odom: AMCL when with_nav2, the EKF otherwise (with both, the EKF runs with
  publish_tf false, said with a LogInfo).
- Parameters come from params_file; only the launch arguments given here (map, output_mode,
  use_sim_time) override it, and each override is logged.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    'map': ('', 'vpr_ros map directory (sets map_path of every vpr_ros node)'),
    'params_file': (None, 'vpr_ros YAML'),
    'namespace': ('', 'namespace of every node and topic'),
    'with_nav2': ('false', 'start Nav2 map_server + AMCL (needs nav2_map)'),
    'nav2_map': ('', 'occupancy grid map yaml for Nav2'),
    'with_ekf': ('false', "start robot_localization's EKF fusing vpr/pose_prior"),
    'output_mode': ('', "matcher output_mode (pose0 | initialpose | both); '' = the YAML's"),
    'use_sim_time': ('false', 'true when replaying bags with --clock'),
    'log_level': ('info', 'debug | info | warn | error'),
    'use_respawn': ('false', 'restart a node that exits'),
}


def _share(package):
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        return get_package_share_directory(package)
    except PackageNotFoundError:
        return None


def _vpr_nodes(arg, namespace, ekf: bool):
    from vpr_ros.graph.launcher import GRAPHS, MAP_PATH_NODES
    sim = arg('use_sim_time').lower() == 'true'
    actions, names = [], []
    for executable, name in GRAPHS['localize'][1]:
        overrides = {'use_sim_time': sim}
        if arg('map') and name in MAP_PATH_NODES:
            overrides['map_path'] = arg('map')
        if name == 'matcher' and arg('output_mode'):
            overrides['output_mode'] = arg('output_mode')
            actions.append(LogInfo(msg=f'matcher output_mode set to {arg("output_mode")} by '
                                       'the launch argument'))
        if name == 'matcher' and ekf:
            overrides['set_pose_topic'] = 'set_pose'
            actions.append(LogInfo(msg='matcher set_pose_topic set to set_pose: '
                                       'relocalizations reset the EKF (with_ekf)'))
        actions.append(Node(
            package='vpr_ros', executable=executable, name=name, namespace=namespace,
            arguments=['--managed'], parameters=[arg('params_file'), overrides],
            respawn=arg('use_respawn').lower() == 'true', respawn_delay=2.0,
            ros_arguments=['--log-level', arg('log_level')], output='screen'))
        names.append(name)
    return actions, names


def _lifecycle_manager(names, namespace, sim):
    if _share('nav2_lifecycle_manager'):
        return [LogInfo(msg='nav2_lifecycle_manager brings the vpr_ros nodes up'),
                Node(package='nav2_lifecycle_manager', executable='lifecycle_manager',
                     name='lifecycle_manager_vpr', namespace=namespace, output='screen',
                     parameters=[{'node_names': names, 'autostart': True, 'bond_timeout': 0.0,
                                  'use_sim_time': sim}])]
    full = [f'{namespace}/{n}'.lstrip('/') for n in names]
    return [LogInfo(msg='nav2_lifecycle_manager is not installed: the vpr_ros lifecycle '
                        'driver configures and activates the nodes'),
            ExecuteProcess(cmd=[_executable('vpr-ros'), 'lifecycle', 'up', *full],
                           name='vpr_lifecycle_driver', output='screen')]


def _executable(name):
    from ament_index_python.packages import get_package_prefix
    return os.path.join(get_package_prefix('vpr_ros'), 'lib', 'vpr_ros', name)


def _setup(context):
    from vpr_ros.graph.launcher import normalize_namespace

    def arg(name):
        return LaunchConfiguration(name).perform(context)
    namespace = normalize_namespace(arg('namespace'))
    sim = arg('use_sim_time').lower() == 'true'
    with_nav2, with_ekf = arg('with_nav2') == 'true', arg('with_ekf') == 'true'
    if with_nav2 and not arg('nav2_map'):
        raise RuntimeError('with_nav2:=true needs nav2_map:=<occupancy map .yaml> (Nav2 '
                           'localizes against it); or run with with_nav2:=false')
    share = _share('vpr_ros')
    ekf = with_ekf and bool(_share('robot_localization'))
    actions, names = _vpr_nodes(arg, namespace, ekf)
    actions += _lifecycle_manager(names, namespace, sim)
    nav2 = _share('nav2_bringup') if with_nav2 else None
    if with_nav2 and not nav2:
        actions.append(LogInfo(msg='nav2_bringup is not installed: starting vpr_ros only'))
    if nav2:
        from launch.actions import IncludeLaunchDescription
        from launch.launch_description_sources import PythonLaunchDescriptionSource
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(nav2, 'launch', 'localization_launch.py')),
            launch_arguments={'map': arg('nav2_map'), 'use_sim_time': str(sim).lower(),
                              'namespace': namespace,
                              'params_file': os.path.join(share, 'config',
                                                          'nav2_amcl_example.yaml')}.items()))
    if with_ekf and not _share('robot_localization'):
        actions.append(LogInfo(msg='robot_localization is not installed: no EKF started'))
    elif with_ekf:
        ekf = {'use_sim_time': sim}
        if nav2:
            ekf['publish_tf'] = False
            actions.append(LogInfo(msg='AMCL publishes map->odom; the EKF runs with '
                                       'publish_tf false (one owner of the transform)'))
        actions.append(Node(
            package='robot_localization', executable='ekf_node', name='ekf_filter_node',
            namespace=namespace, output='screen', parameters=[os.path.join(
                share, 'config', 'robot_localization_example.yaml'), ekf]))
    return actions


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare('vpr_ros'), 'config',
                                           'localize.yaml'])
    return LaunchDescription([
        DeclareLaunchArgument(name, default_value=default_params if default is None
                              else default, description=description)
        for name, (default, description) in ARGUMENTS.items()
    ] + [OpaqueFunction(function=_setup)])
