"""``vpr-ros`` command line: one subcommand per capability, each in its own module.

A subcommand module (vpr_ros/cli/<subcommand>.py) defines ``add_arguments(parser)`` and
``run(args) -> int`` on top of the library; the library never imports this package. Modules
are imported only when their subcommand runs, so ``vpr-ros --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

SUBCOMMANDS = {
    'run': ('vpr_ros.cli.run', 'start a node graph (e.g. localize) from its YAML'),
    'config': ('vpr_ros.cli.config', 'write the localization parameter YAML (config dump)'),
    'lifecycle': ('vpr_ros.cli.lifecycle',
                  'configure and activate managed nodes (without nav2_lifecycle_manager)'),
    'demo': ('vpr_ros.cli.demo', 'sample world -> map -> localize it through the nodes'),
    'world': ('vpr_ros.cli.world', 'render a synthetic geo-tagged town (folders and rosbags)'),
    'build-map': ('vpr_ros.cli.build_map', 'build a map store from images, a manifest or a bag'),
    'map-info': ('vpr_ros.cli.map_info', 'print the manifest and statistics of a map'),
    'evaluate': ('vpr_ros.cli.evaluate', 'Recall@N, pose error and latency on a bag/folder'),
    'kidnap-eval': ('vpr_ros.cli.kidnap_eval',
                    'kidnapped-robot evaluation: single frame vs temporal filter'),
    'train': ('vpr_ros.cli.train', 'train a query network (asym | distill | gallery)'),
    'evaluate-asym': ('vpr_ros.cli.evaluate_asym',
                      "re-evaluate a `train asym` run's checkpoints on other towns"),
    'export-onnx': ('vpr_ros.cli.export_onnx', 'export a query network to ONNX with parity'),
    'hubness-reference': ('vpr_ros.cli.hubness_reference',
                          "a query network's reference for the matcher's hubness correction"),
    'profile': ('vpr_ros.cli.profile', 'params and FLOPs of every registered model'),
    'bench-map': ('vpr_ros.cli.bench_map', 'map store load time, RSS and query latency'),
    'bench-robot': ('vpr_ros.cli.bench_robot',
                    'robot install without torch: size, node RSS and latency from its venv'),
    'bench-verify': ('vpr_ros.cli.bench_verify',
                     'global-only vs + geometric verification / metric pose, and its cost'),
    'bench': ('vpr_ros.cli.bench',
              'the real-time budget table (models, node, matcher, end to end)'),
}


def main(argv: Optional[List[str]] = None) -> int:
    """``vpr-ros COMMAND ...``: parse the subcommand, import its module, run it."""
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
    from vpr_ros.cli.dataclass_args import ArgumentParser  # --help shows every default
    parser = ArgumentParser(prog=f'vpr-ros {args.command}',
                            description=SUBCOMMANDS[args.command][1])
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(argv[1:])) or 0)
