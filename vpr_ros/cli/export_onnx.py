"""``vpr-ros export-onnx``: export a model to ONNX, check parity with onnxruntime, embed metadata.

The export itself is vpr_ros.models.onnx_export (``export_onnx``, ``parity``).
"""
from __future__ import annotations

from vpr_ros.models.onnx_export import export_onnx, parity


def add_arguments(parser) -> None:
    """Options of ``vpr-ros export-onnx``."""
    parser.add_argument('--model', default='',
                        help='registered model name (see vpr_ros.models.list_models)')
    parser.add_argument('--checkpoint', default='',
                        help='a vpr_ros checkpoint (save_checkpoint), or with --model a backbone '
                             'weights file (e.g. the official DINOv2 .pth)')
    parser.add_argument('--out', required=True, help='output .onnx path')
    parser.add_argument('--batch', type=int, default=0,
                        help='fixed batch size (default 0: dynamic batch axis)')
    parser.add_argument('--input-size', type=int, nargs='+', default=None,
                        help='H [W] input size (default: the model\'s)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='fail (exit 1) when the parity max abs diff exceeds this')


def run(args) -> int:
    """Build, export, check parity; prints the max abs diff and returns 0 when within tolerance."""
    from vpr_ros.models.runtime import build_torch_model
    size = args.input_size
    if size is not None and len(size) not in (1, 2):
        raise SystemExit('--input-size takes H or H W')
    size = None if size is None else (size[0], size[-1])
    if not args.model and not args.checkpoint:
        raise SystemExit('give --model NAME and/or --checkpoint FILE')
    from vpr_ros.models.checkpoint import is_checkpoint
    ckpt, weights = args.checkpoint, ''
    if ckpt and args.model and not is_checkpoint(ckpt):
        ckpt, weights = '', ckpt
    model, meta = build_torch_model(model=args.model, checkpoint=ckpt, weights=weights,
                                    input_size=size)
    data = export_onnx(model, meta, args.out, batch=args.batch or None, opset=args.opset)
    diff = parity(model, data)
    print(f'exported {meta["name"]} ({meta["dim"]}-d, input {meta["input_size"]}) to '
          f'{args.out}; parity max abs diff vs torch = {diff:.3g}')
    if diff > args.tolerance:
        print(f'parity FAILED: {diff:.3g} > tolerance {args.tolerance:g}')
        return 1
    return 0
