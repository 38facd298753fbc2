"""Localization graph: query_encoder -> matcher, with gallery_server serving the map.

    ros2 launch vpr_ros localize.launch.py map:=/maps/town [params_file:=my.yaml]
        [namespace:=robot1] [use_sim_time:=true] [log_level:=info] [use_respawn:=true]

The nodes and their order come from vpr_ros.graph.launcher.GRAPHS, the table `vpr-ros run localize`
starts without a ROS distro, so both start the same graph. `map` sets map_path of every node
(empty: the YAML's map_path is kept). The default YAML is keyed `/**/<node>`, so it applies under
any namespace.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    'map': ('', 'map directory built by `vpr-ros build-map` (sets map_path of every node)'),
    'params_file': (None, 'YAML with the query_encoder/gallery_server/matcher parameters'),
    'namespace': ('', 'namespace of every node and topic (e.g. robot1)'),
    'use_sim_time': ('false', 'true when replaying bags with --clock'),
    'log_level': ('info', 'debug | info | warn | error'),
    'use_respawn': ('false', 'restart a node that exits (after 2 s)'),
}


def _nodes(context):
    from vpr_ros.graph.launcher import GRAPHS, MAP_PATH_NODES, normalize_namespace

    def arg(name):
        return LaunchConfiguration(name).perform(context)
    map_path = arg('map')
    namespace = normalize_namespace(arg('namespace'))
    respawn = arg('use_respawn').lower() == 'true'
    common = {'use_sim_time': arg('use_sim_time').lower() == 'true'}
    actions = [LogInfo(msg=f'vpr_ros localize: namespace {namespace or "/"}, map '
                           f'{map_path or "from " + arg("params_file")}')]
    for executable, name in GRAPHS['localize'][1]:
        overrides = dict(common, **({'map_path': map_path}
                                    if map_path and name in MAP_PATH_NODES else {}))
        actions.append(Node(
            package='vpr_ros', executable=executable, name=name, namespace=namespace,
            parameters=[arg('params_file'), overrides], respawn=respawn, respawn_delay=2.0,
            ros_arguments=['--log-level', arg('log_level')], output='screen'))
    return actions


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare('vpr_ros'), 'config',
                                           'localize.yaml'])
    return LaunchDescription([
        DeclareLaunchArgument(name, default_value=default_params if default is None
                              else default, description=description)
        for name, (default, description) in ARGUMENTS.items()
    ] + [OpaqueFunction(function=_nodes)])
