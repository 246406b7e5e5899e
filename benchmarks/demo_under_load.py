"""The detection demo's training step when another process takes a core,
under three thread policies timed in turn in one run: all cores with
OpenMP's default waiting (spin, then sleep: the demo on an idle machine
before AdaptiveThreadsHook), all cores with OMP_WAIT_POLICY=PASSIVE (the
demo before, when the CPU was busy at its start), and AdaptiveThreadsHook
(the demo now); each with a competing process paused or running.

    .venv/bin/python benchmarks/demo_under_load.py

Prints seconds per step (median of the runs), the threads each run
started with, and for each policy busy / idle and both against the
default policy's idle step (the demo's speed before, on the same machine).
See efficientvit_mm/benchmarking/shared_cpu.py for the method.
"""
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def main(argv=None) -> int:
    from efficientvit_mm.benchmarking.machine import describe_machine
    from efficientvit_mm.benchmarking.shared_cpu import (DEMO_CONFIG, POLICIES,
                                                         shared_cpu_figures)
    from efficientvit_mm.benchmarking.timing import median
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs of each contender (default 3)')
    parser.add_argument('--min-run-s', type=float, default=8.,
                        help='seconds a run lasts at least (default 8)')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args(argv)
    threads = {}
    seconds = shared_cpu_figures(
        osp.join(ROOT, DEMO_CONFIG), args.repeats, args.min_run_s, threads)
    step = {name: median(times) for name, times in seconds.items()}
    print(describe_machine())
    for name, value in step.items():
        runs = ', '.join(f'{t:.3f}' for t in seconds[name])
        print(f'{name:14s} {value:.3f} s/step, threads '
              f'{threads.get(name)} (runs: {runs})')
    base = step['spin/idle']
    ratios = {}
    for policy in POLICIES:
        idle, busy = step[f'{policy}/idle'], step[f'{policy}/busy']
        ratios[policy] = dict(busy_over_idle=busy / idle,
                              idle_over_spin_idle=idle / base,
                              busy_over_spin_idle=busy / base)
        print(f'{policy:9s} busy/idle {busy / idle:.2f}x; against spin/idle: '
              f'idle {idle / base:.2f}x, busy {busy / base:.2f}x')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(seconds=seconds, ratios=ratios,
                     machine=describe_machine()), f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
