"""Taylor structured pruning to a FLOPs or parameter budget, and how many
Q, K, V and FFN channels each block keeps (the paper's Fig. 5).

    python tools/analysis/taylor_pruning.py CONFIG CHECKPOINT \\
        --data-config configs/demo/efficientvit_m0_shapes_cls.py \\
        [--data-options KEY=VALUE ...] [--target-flops 0.5 | \\
        --target-params 0.5] [--steps 10] [--batches 8] \\
        [--finetune-epochs 0] [--train-epochs 0] [--shape 224] \\
        [--threads 2] [--out-dir DIR]

    # DeiT-T, trained briefly on the shapes crops first (no checkpoint)
    python tools/analysis/taylor_pruning.py \\
        mmpretrain::deit/deit-tiny_4xb256_in1k.py none \\
        --data-config configs/demo/efficientvit_m0_shapes_cls.py \\
        --train-epochs 3 --target-flops 0.5

Every Q/K dimension, V channel, FFN hidden channel and head gets a gate;
the first-order Taylor importance of a unit is the squared gradient of the
loss with respect to its gate (the change of the loss when it is removed,
to first order), averaged over --batches train batches of the data config
(model in eval mode). Each step removes the units of least importance per
unit of cost until that step's share of the budget is met. CHECKPOINT may
be 'none' (random weights, or --train-epochs of training on the data).
Writes ``taylor_pruning.csv`` (per block: kept channels over the block's
embedding width, before and after), ``taylor_pruning_steps.csv`` (params,
FLOPs, top-1 per step) and ``taylor_pruning.png``.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    cli.add_model(parser)
    parser.add_argument(
        '--data-config', required=True,
        help='classification config: its train split gives '
        'the importance, its val split the accuracy')
    cli.add_cfg_options(parser, '--data-options',
                        help='--cfg-options of the data config')
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument('--target-flops', type=float,
                        help='keep this fraction of the FLOPs (default 0.5)')
    budget.add_argument('--target-params', type=float,
                        help='keep this fraction of the parameters')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--batches', type=int, default=8,
                        help='train batches per importance estimate')
    parser.add_argument('--finetune-epochs', type=float, default=0.,
                        help='training after each step (default none)')
    parser.add_argument('--train-epochs', type=float, default=0.,
                        help='train this long on the data before pruning')
    cli.add_shape(
        parser, 'input size FLOPs are counted at (default: the '
        "data's image size)")
    cli.add_threads(parser)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default='work_dirs/taylor_pruning')
    args = parser.parse_args(argv)
    args.shape = cli.parse_shape(parser, args.shape)
    cli.check_threads(parser, args.threads)
    args.budget = 'params' if args.target_params is not None else 'flops'
    args.target = args.target_params if args.budget == 'params' else (
        args.target_flops if args.target_flops is not None else 0.5)
    if not 0 < args.target < 1:
        from efficientvit_mm.errors import UserError
        raise UserError(f'--target-{args.budget} is the fraction of the '
                        f'{args.budget} to keep, in (0, 1); got {args.target}')
    if args.steps < 1 or args.batches < 1:
        parser.error('--steps and --batches must be at least 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from efficientvit_mm.analysis import taylor_pruning as tp
    from efficientvit_mm.analysis.training import (build_loader,
                                                   data_model_cfg, first_batch,
                                                   init_weights, train_briefly)
    from efficientvit_mm.apis import build_model
    from efficientvit_mm.benchmarking.machine import describe_machine
    from efficientvit_mm.runtime import load_config
    from efficientvit_mm.runtime.args import (checkpoint_or_none, config_name,
                                              output_paths)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_cfg = load_config(args.data_config, args.data_options)
    cfg = data_model_cfg(load_config(args.config, args.cfg_options), data_cfg)
    ckpt = checkpoint_or_none(args.checkpoint)
    model = build_model(cfg, ckpt)
    if ckpt is None:
        init_weights(model)
    print(f'machine: {describe_machine()}', flush=True)
    if args.train_epochs > 0:
        print(f'training {args.train_epochs:g} epoch(s) before pruning',
              flush=True)
        train_briefly(model, data_cfg, args.train_epochs,
                      lambda m: print(m, flush=True), '  train',
                      seed=args.seed)
    shape = args.shape or tuple(
        model.data_preprocessor(
            first_batch(build_loader(data_cfg, 'train', args.seed)),
            False)['inputs'].shape[2:])
    print(
        f'pruning to {args.target:.0%} of the {args.budget} (counted at '
        f'{shape[0]}x{shape[1]}) in {args.steps} steps', flush=True)
    result = tp.taylor_prune(model, data_cfg, shape, args.budget, args.target,
                             args.steps, args.batches, args.finetune_epochs,
                             lambda m: print(m, flush=True), args.seed)
    paths = output_paths(args.out_dir, 'taylor_pruning.csv',
                         'taylor_pruning_steps.csv', 'taylor_pruning.png')
    tp.write_csv(result['blocks'], paths[0])
    tp.write_csv(result['steps'], paths[1])
    last = result['steps'][-1]
    name = config_name(args.config)
    tp.plot(
        result['blocks'], paths[2],
        f'{name}: {args.budget} budget {args.target:.0%} at '
        f'{shape[0]}x{shape[1]}\npruned to {last["params"] / 1e6:.3f} M '
        f'params, {last["flops"] / 1e6:.1f} M FLOPs' +
        (f', top-1 {result["steps"][0]["top1"]:.1f} -> {last["top1"]:.1f}%'
         if 'top1' in last else ''))
    print(f'{"block":<34}{"width":>6}{"Q=K":>7}{"V":>7}{"FFN":>7}{"heads":>7}')
    for b in result['blocks']:
        cells = [
            '' if b[f'{k}_after'] == '' else f'{b[f"{k}_after"]:.2f}'
            for k in ('q', 'v', 'ffn', 'heads')
        ]
        print(f'{b["block"]:<34}{b["width"]:>6}' + ''.join(f'{c:>7}'
                                                           for c in cells))
    print(f'wrote {", ".join(paths)}')
    return result


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/analysis/taylor_pruning.py', main)
