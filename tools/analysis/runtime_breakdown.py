"""Split inference time into compute- and memory-bound work per block type
(the paper's Fig. 2).

    python tools/analysis/runtime_breakdown.py CONFIG [--device cpu|cuda] \\
        [--batch-size 16] [--shape 224] [--deploy] [--out-dir DIR]

Writes ``runtime_breakdown.csv`` (block, kind, operator group, ms per
forward) and ``runtime_breakdown.png`` (stacked bars). Weights do not change
the timing, so the model is built from the config without a checkpoint.
"""
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('config')
    cli.add_cfg_options(parser)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--batch-size', type=int, default=16)
    cli.add_shape(parser)
    cli.add_threads(parser, 1, ', as the paper')
    parser.add_argument('--deploy', action='store_true',
                        help='fold BatchNorm first (switch_to_deploy)')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--out-dir', default='work_dirs/runtime_breakdown')
    args = parser.parse_args(argv)
    args.shape = cli.parse_shape(parser, args.shape)
    cli.check_threads(parser, args.threads)
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is visible')
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from efficientvit_mm.analysis import runtime_breakdown, summarise
    from efficientvit_mm.analysis.runtime_breakdown import plot, write_csv
    from efficientvit_mm.apis import DEFAULT_SHAPES, tensor_model
    from efficientvit_mm.deploy import switch_to_deploy
    from efficientvit_mm.runtime import load_config, task_of
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    shape = args.shape or DEFAULT_SHAPES[task_of(cfg)]
    net = tensor_model(cfg, shape).to(args.device)
    if args.deploy:
        switch_to_deploy(net.model)
    x = torch.randn(args.batch_size, 3, *shape, device=args.device)
    rows = runtime_breakdown(net, x, runs=args.runs)
    os.makedirs(args.out_dir, exist_ok=True)
    csv_path = osp.join(args.out_dir, 'runtime_breakdown.csv')
    png_path = osp.join(args.out_dir, 'runtime_breakdown.png')
    write_csv(rows, csv_path)
    title = (f'{osp.basename(args.config)}: {args.device}, batch '
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
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/analysis/runtime_breakdown.py', main)
