"""Classifier throughput against timm, M0-M5, the paper's CPU method.

    .venv/bin/python benchmarks/cpu_vs_timm.py [--archs m0 m4] [--json F]

For every arch, our eager and deploy classifiers (channels_last) and timm's
efficientvit_m* holding the same weights (as shipped: eager, NCHW) are timed
interleaved in one process: batch 16, one thread, 224x224, fp32 (the figures
of ``tools/benchmark.py --arch mN --compare-timm``). Targets: deploy >= 1.4x
timm eager, eager >= 1.0x. Needs timm (`pip install timm`).

The eager models allocate many large maps, so their figures depend on how
often the allocator returns memory to the system (each reuse then costs
page faults). For the comparison without that cost (the harder one for the
deploy mode), keep freed memory in the process:

    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000 \\
        .venv/bin/python benchmarks/cpu_vs_timm.py
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def main(argv=None):
    from efficientvit_mm.runtime.args import parse_arch_benchmark
    args = parse_arch_benchmark(__file__, __doc__.split('\n')[0], argv)
    from efficientvit_mm.benchmarking import describe_machine
    from efficientvit_mm.benchmarking.inference import (TIMM, benchmark_config,
                                                        format_results)
    from efficientvit_mm.benchmarking.machine import write_figures
    from efficientvit_mm.runtime import load_config
    table = {}
    for arch in args.archs:
        config = osp.join(ROOT, 'configs', f'efficientvit_{arch}_in1k.py')
        report = benchmark_config(
            load_config(config), ('eager', 'deploy'), compare_timm=True,
            repeats=args.repeats)
        print(format_results(report, config), flush=True)
        table[arch] = report['results']
    print(f'\n{describe_machine()}')
    print(f'{"arch":<6}{"timm img/s":>12}{"eager img/s":>13}'
          f'{"deploy img/s":>14}{"eager/timm":>12}{"deploy/timm":>13}')
    for arch, res in table.items():
        t, e, d = (res[k]['images_per_s'] for k in (TIMM, 'eager', 'deploy'))
        print(f'{arch:<6}{t:>12.1f}{e:>13.1f}{d:>14.1f}{e / t:>11.2f}x'
              f'{d / t:>12.2f}x')
    write_figures(args.json, table)
    return table


if __name__ == '__main__':
    main()
