"""pip-installable core of vpr_ros (models, training, map store, retrieval, evaluation).

ROS 2 users build the package with colcon (package.xml, CMakeLists.txt); ML users
`pip install .` and train without ROS. The nodes need rclpy and the generated interfaces.
"""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [line.split('#')[0].strip() for line in
                (here / 'requirements.txt').read_text().splitlines()]

setup(
    name='vpr_ros',
    version='0.1.0',
    description='Asymmetric visual place recognition for ROS 2 (core library and tools)',
    long_description=(here / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['vpr_ros', 'vpr_ros.*']),
    package_data={'vpr_ros': ['world/shaders/*.glsl', 'weights/*.safetensors', 'weights/*.json',
                              'weights/*.md']},
    install_requires=[r for r in requirements if r],
    extras_require={'test': ['pytest>=7', 'pytest-timeout>=2']},
    entry_points={'console_scripts': ['vpr-ros = vpr_ros.cli:main']},
)
