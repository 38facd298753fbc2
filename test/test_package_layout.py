"""The package as a ROS user and an ML user meet it: layout, launch/runner parity, pure core."""
import pkgutil
import subprocess
import sys

import yaml

from ros_harness import python_env, REPO
from vpr_ros.launcher import GRAPHS


def flat(values: dict, prefix: str = '') -> dict:
    out = {}
    for k, v in values.items():
        out.update(flat(v, f'{prefix}{k}.') if isinstance(v, dict) else {prefix + k: v})
    return out


def test_launch_files_start_the_runner_graphs():
    """The launch files take their nodes from GRAPHS (the live graphs are compared over DDS in
    test_ros2_launch.py); every node has an executable for ros2 run and python -m."""
    for graph, (params, nodes) in GRAPHS.items():
        text = (REPO / 'launch' / f'{graph}.launch.py').read_text()
        assert f"GRAPHS['{graph}']" in text and params in text
        for exe, _ in nodes:
            assert (REPO / 'scripts' / exe).is_file()
            assert (REPO / 'vpr_ros' / 'nodes' / f'{exe}.py').is_file()


def test_yaml_is_complete_and_equal_to_the_config_dataclasses():
    """config/localize.yaml lists every setting with the dataclass default, keyed /**/<node>
    (empty-list defaults are left out: ROS parameter YAML cannot type an empty list)."""
    import dataclasses
    from vpr_ros import config
    from vpr_ros.params_file import node_params
    classes = {'query_encoder': config.QueryEncoderConfig,
               'gallery_server': config.GalleryServerConfig, 'matcher': config.MatcherConfig}
    doc = yaml.safe_load((REPO / 'config' / 'localize.yaml').read_text())
    assert set(doc) == {f'/**/{name}' for name in classes}
    for name, cls in classes.items():
        want = {k: v for k, v in flat(dataclasses.asdict(cls())).items() if v != []}
        assert flat(node_params(doc, name, namespace='robot1')) == want, name


def test_parameter_files_find_nodes_under_any_key_style():
    from vpr_ros.params_file import node_params, set_node_params
    doc = {'/**': {'ros__parameters': {'use_sim_time': True}},
           'matcher': {'ros__parameters': {'top_k': 3}},
           '/robot1/matcher': {'ros__parameters': {'top_k': 4}},
           '/**/gallery_server': {'ros__parameters': {'default_k': 7}}}
    assert node_params(doc, 'matcher') == {'use_sim_time': True, 'top_k': 3}
    assert node_params(doc, 'matcher', '/robot1') == {'use_sim_time': True, 'top_k': 4}
    assert node_params(doc, 'gallery_server', 'robot2')['default_k'] == 7
    set_node_params(doc, 'gallery_server', {'default_k': 9})
    set_node_params(doc, 'query_encoder', {'model': 'x'})
    assert doc['/**/gallery_server']['ros__parameters']['default_k'] == 9
    assert doc['/**/query_encoder']['ros__parameters'] == {'model': 'x'}


def test_core_never_imports_rclpy():
    core = [m.name for m in pkgutil.walk_packages([str(REPO / 'vpr_ros')], 'vpr_ros.')
            if not m.name.startswith(('vpr_ros.nodes', 'vpr_ros.msg', 'vpr_ros.srv'))
            and m.name.count('.') < 4]
    code = ('import importlib, sys\n'
            f'for m in {core!r}:\n'
            '    importlib.import_module(m)\n'
            'bad = sorted(m for m in sys.modules\n'
            '             if m.split(".")[0] in ("rclpy", "rosidl_runtime_py"))\n'
            'print(len(sys.modules), bad)\n'
            'sys.exit(1 if bad else 0)\n')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env=python_env(), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(core) > 10


def test_package_xml_is_format_3_with_interfaces():
    import xml.etree.ElementTree as ET
    root = ET.parse(REPO / 'package.xml').getroot()
    assert root.get('format') == '3' and root.findtext('name') == 'vpr_ros'
    assert root.find('export/build_type').text == 'ament_cmake'
    groups = [e.text for e in root.findall('member_of_group')]
    assert 'rosidl_interface_packages' in groups
    cmake = (REPO / 'CMakeLists.txt').read_text()
    for f in sorted((REPO / 'msg').glob('*.msg')) + sorted((REPO / 'srv').glob('*.srv')):
        assert f'"{f.parent.name}/{f.name}"' in cmake
