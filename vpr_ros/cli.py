"""``vpr-ros`` command line: one subcommand per capability, each in its own module.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported only when their subcommand runs, so ``vpr-ros --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

SUBCOMMANDS = {
    'run': ('vpr_ros.launcher', 'start a node graph (e.g. localize) from its YAML'),
    'lifecycle': ('vpr_ros.nodes.lifecycle_driver',
                  'configure and activate managed nodes (without nav2_lifecycle_manager)'),
    'demo': ('vpr_ros.nodes.demo', 'sample world -> map -> localize it through the nodes'),
    'world': ('vpr_ros.world.cli', 'render a synthetic geo-tagged town (folders and rosbags)'),
    'build-map': ('vpr_ros.mapstore.cli', 'build a map store from images, a manifest or a bag'),
    'map-info': ('vpr_ros.mapstore.info_cli', 'print the manifest and statistics of a map'),
    'evaluate': ('vpr_ros.evaluation.cli', 'Recall@N, pose error and latency on a bag/folder'),
    'kidnap-eval': ('vpr_ros.localization.kidnap_run',
                    'kidnapped-robot evaluation: single frame vs temporal filter'),
    'train': ('vpr_ros.training.cli', 'train a query network (asym | distill)'),
    'evaluate-asym': ('vpr_ros.training.asym_eval_cli',
                      "re-evaluate a `train asym` run's checkpoints on other towns"),
    'export-onnx': ('vpr_ros.models.onnx_export', 'export a query network to ONNX with parity'),
    'hubness-reference': ('vpr_ros.hubness_cli',
                          "a query network's reference for the matcher's hubness correction"),
    'profile': ('vpr_ros.models.profile', 'params and FLOPs of every registered model'),
    'bench-map': ('vpr_ros.mapstore.bench', 'map store load time, RSS and query latency'),
    'bench': ('vpr_ros.bench', 'the real-time budget table (models, node, matcher, end to end)'),
}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog='vpr-ros', description='Visual place recognition for ROS 2.',
        epilog='subcommands:\n' + '\n'.join(f'  {k:<14} {v[1]}' for k, v in SUBCOMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument('command', choices=sorted(SUBCOMMANDS), metavar='command')
    if not argv or argv[0] in ('-h', '--help'):
        top.print_help()
        return 0
    args = top.parse_args(argv[:1])
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    parser = argparse.ArgumentParser(prog=f'vpr-ros {args.command}',
                                     description=SUBCOMMANDS[args.command][1])
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(argv[1:])) or 0)


if __name__ == '__main__':
    sys.exit(main())
