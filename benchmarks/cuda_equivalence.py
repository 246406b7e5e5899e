"""On a CUDA device: the fast inference modes compute what eager computes.

    python benchmarks/cuda_equivalence.py [--arch m4] [--batch-size 8]

Builds the classifier with non-trivial BatchNorm statistics and attention
biases, then compares eager fp32 logits with deploy (BN folded,
channels_last) and a CUDA-graph replay of it; prints the max abs
differences (the CPU test suite holds deploy to 1e-4).
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def main(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__.split('\n')[0])
    parser.add_argument('--arch', default='m4')
    parser.add_argument('--batch-size', type=int, default=8)
    args = parser.parse_args(argv)
    import torch

    from efficientvit_mm.apis import tensor_model
    from efficientvit_mm.benchmarking import prepare
    from efficientvit_mm.runtime import load_config
    from efficientvit_mm.testing import randomise
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = load_config(
        osp.join(ROOT, 'configs', f'efficientvit_{args.arch}_in1k.py'))
    net = randomise(tensor_model(cfg, (224, 224)), seed=0).cuda()
    x = torch.randn(args.batch_size, 3, 224, 224, device='cuda')
    with torch.inference_mode():
        ref = net(x)
    for mode in ('deploy', 'cudagraph'):
        fn = prepare(net, mode, x)
        with torch.inference_mode():
            out = fn(x.contiguous(memory_format=torch.channels_last))
        diff = (out - ref).abs().max().item()
        print(f'{args.arch} {mode} vs eager (fp32, CUDA): max abs diff '
              f'{diff:.2e} {"OK" if diff <= 1e-4 else "TOO LARGE"}')


if __name__ == '__main__':
    main()
