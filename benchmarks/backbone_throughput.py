"""Backbone throughput of EfficientViT M0-M5, eager and deploy.

    .venv/bin/python benchmarks/backbone_throughput.py [--batch-size 16]
        [--shape 224] [--threads 1] [--device cpu] [--archs m0 m4]

The paper's CPU method by default: batch 16, one thread, 224x224, the
classification windows (7, 7, 4). For each arch, eager (as built) and deploy
(BatchNorm folded) are timed interleaved in channels_last; the table gives
images/s, batch-1 latency and the deploy speed-up.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def main(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__.split('\n')[0])
    cli.add_archs(parser)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--shape', type=int, default=224)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args(argv)
    import torch

    from efficientvit_mm.benchmarking import (benchmark, describe_machine,
                                              prepare)
    from efficientvit_mm.models import EfficientViT
    torch.set_num_threads(args.threads)
    example = torch.randn(args.batch_size, 3, args.shape, args.shape,
                          device=args.device)
    print(describe_machine())
    print(f'{"arch":<6}{"eager img/s":>13}{"deploy img/s":>14}'
          f'{"speed-up":>10}{"eager b1 ms":>13}{"deploy b1 ms":>14}')
    rows = {}
    for arch in args.archs:
        model = EfficientViT(arch, window_size=(7, 7, 4)).eval()
        models = {
            mode: (prepare(model, mode, example), ) * 2
            for mode in ('eager', 'deploy')
        }
        res = benchmark(models, args.batch_size, (args.shape, args.shape),
                        args.device, repeats=args.repeats)
        e, d = res['eager'], res['deploy']
        rows[arch] = res
        print(
            f'{arch:<6}{e["images_per_s"]:>13.1f}{d["images_per_s"]:>14.1f}'
            f'{d["images_per_s"] / e["images_per_s"]:>9.2f}x'
            f'{e["latency_ms"]:>13.2f}{d["latency_ms"]:>14.2f}', flush=True)
    return rows


if __name__ == '__main__':
    main()
