"""Split inference time into compute- and memory-bound work per block type
(the paper's Fig. 2).

    python tools/analysis/runtime_breakdown.py CONFIG [--device cpu|cuda] \\
        [--batch-size 16] [--shape 224] [--deploy] [--out-dir DIR]

Writes ``runtime_breakdown.csv`` (block, kind, operator group, ms per
forward) and ``runtime_breakdown.png`` (stacked bars). Weights do not change
the timing, so the model is built from the config without a checkpoint.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, ROOT)

import efficientvit_mm  # noqa: E402,F401
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from efficientvit_mm.analysis import runtime_breakdown, summarise  # noqa
from efficientvit_mm.analysis.runtime_breakdown import plot, write_csv  # noqa
from efficientvit_mm.apis import build_model, load_config, task_of  # noqa
from efficientvit_mm.apis.complexity import (DEFAULT_SHAPES,  # noqa: E402
                                             TensorForward, data_samples)
from efficientvit_mm.models.utils import switch_to_deploy  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--shape', type=int, nargs='+',
                        help='H W or one size (default: the task default)')
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads (default 1, as the paper)')
    parser.add_argument('--deploy', action='store_true',
                        help='fold BatchNorm first (switch_to_deploy)')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--out-dir', default='work_dirs/runtime_breakdown')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is visible')
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    task = task_of(cfg)
    shape = DEFAULT_SHAPES[task] if not args.shape else tuple(
        args.shape * 2 if len(args.shape) == 1 else args.shape)
    model = build_model(cfg).to(args.device).eval()
    if args.deploy:
        switch_to_deploy(model)
    net = TensorForward(model, data_samples(task, shape))
    x = torch.randn(args.batch_size, 3, *shape, device=args.device)
    rows = runtime_breakdown(net, x, runs=args.runs)
    os.makedirs(args.out_dir, exist_ok=True)
    csv_path = os.path.join(args.out_dir, 'runtime_breakdown.csv')
    png_path = os.path.join(args.out_dir, 'runtime_breakdown.png')
    write_csv(rows, csv_path)
    title = (f'{os.path.basename(args.config)}: {args.device}, batch '
             f'{args.batch_size}, {shape[0]}x{shape[1]}'
             f'{", deploy" if args.deploy else ""}')
    plot(rows, png_path, title)
    summary = summarise(rows)
    total = sum(v['compute'] + v['memory'] for v in summary.values())
    print(title)
    print(f'{"block":<16}{"compute ms":>12}{"memory ms":>12}{"share":>8}')
    for block, v in summary.items():
        print(f'{block:<16}{v["compute"]:>12.2f}{v["memory"]:>12.2f}'
              f'{(v["compute"] + v["memory"]) / total:>8.0%}')
    memory = sum(v['memory'] for v in summary.values())
    print(f'memory-bound share of the total: {memory / total:.0%}')
    print(f'wrote {csv_path} and {png_path}')
    return rows


if __name__ == '__main__':
    main()
