"""``vpr-ros evaluate-asym``: re-evaluate a `vpr-ros train asym` run's checkpoints on other towns.

The evaluation itself is vpr_ros.experiments.asym.reeval (``evaluate_run``).
"""
from __future__ import annotations

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.experiments.asym.reeval import AsymEvalConfig, evaluate_run, report_dir


def add_arguments(parser) -> None:
    """Options of ``vpr-ros evaluate-asym`` (generated from AsymEvalConfig)."""
    add_dataclass_arguments(parser, AsymEvalConfig)


def run(args) -> int:
    """Entry point of ``vpr-ros evaluate-asym``."""
    cfg = dataclass_from_args(AsymEvalConfig, args)
    if not cfg.eval:
        raise SystemExit('vpr-ros evaluate-asym: --eval (held-out VG folder(s)) is required')
    rep = evaluate_run(cfg)
    print(f'report written to {report_dir(cfg) / "report.md"}')
    for tag in ('gallery_symmetric', 'ours_asym', 'symmetric_student'):
        if tag in rep['recall']:
            print(f'{tag}: R@1 {rep["recall"][tag]["all"]["R@1"]:.1f}%')
    return 0
