"""Classifier throughput against timm, M0-M5, the paper's CPU method.

    .venv/bin/python benchmarks/cpu_vs_timm.py [--archs m0 m4] [--json F]

For every arch, tools/benchmark.py times our eager and deploy classifiers
(channels_last) and timm's efficientvit_m* holding the same weights (as
shipped: eager, NCHW), interleaved in one process: batch 16, one thread,
224x224, fp32. Targets: deploy >= 1.4x timm eager, eager >= 1.0x.
Needs timm (`pip install timm`).

The eager models allocate many large maps, so their figures depend on how
often the allocator returns memory to the system (each reuse then costs
page faults). For the comparison without that cost (the harder one for the
deploy mode), keep freed memory in the process:

    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000 \
        .venv/bin/python benchmarks/cpu_vs_timm.py
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
sys.path.insert(0, ROOT)

import benchmark as bench_tool  # noqa: E402  (tools/benchmark.py)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', nargs='+',
                        default=[f'm{i}' for i in range(6)])
    parser.add_argument('--repeats', type=int, default=9)
    parser.add_argument('--json', help='write all figures to this file')
    args = parser.parse_args(argv)
    table = {}
    for arch in args.archs:
        print(f'--- {arch}', flush=True)
        table[arch] = bench_tool.main([
            '--arch', arch, '--mode', 'eager', 'deploy', '--compare-timm',
            '--repeats', str(args.repeats)
        ])
    print()
    print(f'{"arch":<6}{"timm img/s":>12}{"eager img/s":>13}'
          f'{"deploy img/s":>14}{"eager/timm":>12}{"deploy/timm":>13}')
    for arch, res in table.items():
        t, e, d = (res[k]['images_per_s']
                   for k in ('timm eager', 'eager', 'deploy'))
        print(f'{arch:<6}{t:>12.1f}{e:>13.1f}{d:>14.1f}{e / t:>11.2f}x'
              f'{d / t:>12.2f}x')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(table, f, indent=2)
    return table


if __name__ == '__main__':
    main()
