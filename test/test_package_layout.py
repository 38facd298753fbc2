"""The package as a ROS user and an ML user meet it: layout, launch/runner parity, pure core."""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import yaml

from ros_harness import python_env, REPO
from vpr_ros.launcher import GRAPHS


def launch_nodes(path: Path):
    """(package, executable, name) of every launch_ros Node(...) in a launch file, by AST."""
    found = []
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'Node':
            kw = {k.arg: k.value for k in call.keywords}
            found.append(tuple(kw[k].value for k in ('package', 'executable', 'name')))
    return found


def launch_params_files(path: Path):
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and str(node.value).endswith('.yaml')}


def test_launch_file_and_runner_describe_the_same_graph():
    for graph, (params, nodes) in GRAPHS.items():
        launch = REPO / 'launch' / f'{graph}.launch.py'
        assert launch_nodes(launch) == [('vpr_ros', exe, name) for exe, name in nodes]
        assert launch_params_files(launch) == {params}
        config = yaml.safe_load((REPO / 'config' / params).read_text())
        assert set(config) == {name for _, name in nodes}
        for exe, _ in nodes:  # every executable exists for ros2 run and python -m
            assert (REPO / 'scripts' / exe).is_file()
            assert (REPO / 'vpr_ros' / 'nodes' / f'{exe}.py').is_file()


def test_yaml_fields_are_the_config_dataclasses():
    from vpr_ros import config
    classes = {'query_encoder': config.QueryEncoderConfig,
               'gallery_server': config.GalleryServerConfig, 'matcher': config.MatcherConfig}
    for path in (REPO / 'config').glob('*.yaml'):
        for node, body in yaml.safe_load(path.read_text()).items():
            if node in classes:
                fields = set(config.field_defaults(classes[node]))
                assert set(body['ros__parameters']) <= fields | {'use_sim_time'}, path


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
