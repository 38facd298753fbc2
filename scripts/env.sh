# Source this file to use vpr_ros from the source tree on a machine set up by scripts/setup.sh:
# the venv, the generated interfaces in ./install and the core in ./vpr_ros.
_vpr_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=/dev/null
source "${VPR_ROS_VENV:-$_vpr_root/.venv}/bin/activate"
# the real ros2 CLI and launch system, where the set-up installed them (../shared/ros2-cli)
if [[ -f ${VIRTUAL_ENV}/ros2-cli/setup.bash ]]; then
  # shellcheck source=/dev/null
  source "${VIRTUAL_ENV}/ros2-cli/setup.bash"
fi
_vpr_site=$(echo "$_vpr_root"/install/vpr_ros/lib/python3*/site-packages)
export PYTHONPATH=$_vpr_root:$_vpr_site${PYTHONPATH:+:$PYTHONPATH}
export LD_LIBRARY_PATH=$_vpr_root/install/vpr_ros/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export AMENT_PREFIX_PATH=$_vpr_root/install/vpr_ros${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}:$VIRTUAL_ENV
export VPR_ROS_SHARE=$_vpr_root
export PATH=$_vpr_root/scripts:$PATH
unset _vpr_root _vpr_site
