"""The detection demo's training step when another process takes a core:
with fixed threads (the demo before AdaptiveThreadsHook) and with the hook
(the demo now), the competitor paused or running, timed in turn in one run.

    .venv/bin/python benchmarks/demo_under_load.py
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/demo_under_load.py

Prints seconds per step (median of the runs) and the ratios that matter:
busy / idle for each policy, and the hook's busy step against the fixed
idle step (the demo's speed on an idle machine). See
efficientvit_mm/benchmarking/shared_cpu.py for the method.
"""
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def main(argv=None) -> int:
    from efficientvit_mm.benchmarking.machine import describe_machine
    from efficientvit_mm.benchmarking.shared_cpu import (DEMO_CONFIG,
                                                         shared_cpu_figures,
                                                         wait_policy)
    from efficientvit_mm.benchmarking.timing import median
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs of each contender (default 3)')
    parser.add_argument('--min-run-s', type=float, default=8.,
                        help='seconds a run lasts at least (default 8)')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args(argv)
    seconds = shared_cpu_figures(
        osp.join(ROOT, DEMO_CONFIG), args.repeats, args.min_run_s)
    step = {name: median(times) for name, times in seconds.items()}
    print(describe_machine())
    print(f'OMP_WAIT_POLICY: {wait_policy()}')
    for name, value in step.items():
        runs = ', '.join(f'{t:.3f}' for t in seconds[name])
        print(f'{name:15s} {value:.3f} s/step (runs: {runs})')
    ratios = {
        'fixed busy / idle': step['fixed/busy'] / step['fixed/idle'],
        'adaptive busy / idle': step['adaptive/busy'] / step['adaptive/idle'],
        'adaptive busy / fixed idle':
        step['adaptive/busy'] / step['fixed/idle'],
        'adaptive idle / fixed idle':
        step['adaptive/idle'] / step['fixed/idle'],
    }
    for name, value in ratios.items():
        print(f'{name:27s} {value:.2f}x')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(seconds=seconds, ratios=ratios,
                     machine=describe_machine()), f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
