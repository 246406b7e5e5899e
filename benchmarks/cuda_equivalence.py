"""On a CUDA device: the fast inference modes compute what eager computes.

    python benchmarks/cuda_equivalence.py [--arch m4] [--batch-size 8]

Builds the classifier with non-trivial BatchNorm statistics and attention
biases, then compares eager fp32 logits with deploy (BN folded,
channels_last) and a CUDA-graph replay of it; prints the max abs
differences (the CPU test suite holds deploy to 1e-4).
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import efficientvit_mm  # noqa: E402,F401
import torch  # noqa: E402
from torch.nn.modules.batchnorm import _BatchNorm  # noqa: E402

from efficientvit_mm.apis import build_model, load_config  # noqa: E402
from efficientvit_mm.apis.benchmark import prepare  # noqa: E402
from efficientvit_mm.apis.complexity import TensorForward  # noqa: E402
from efficientvit_mm.models.layers import CascadedGroupAttention  # noqa


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='m4')
    parser.add_argument('--batch-size', type=int, default=8)
    args = parser.parse_args(argv)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = load_config(os.path.join(ROOT, 'configs',
                                   f'efficientvit_{args.arch}_in1k.py'))
    net = TensorForward(build_model(cfg), None).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g)
                                     * .1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g)
                                    + .5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + .5)
            if isinstance(m, CascadedGroupAttention):
                m.attention_biases.copy_(torch.randn(
                    m.attention_biases.shape, generator=g))
    net = net.cuda()
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
