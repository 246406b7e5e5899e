"""Every CPU inference path of the M0-M5 classifiers, beside timm and
onnxruntime, the paper's CPU method (batch 16, one thread, 224x224).

    .venv/bin/python benchmarks/cpu_inference.py [--archs m0 m4] [--json F]

For each arch, timed interleaved in one process:

* ``timm eager``: timm's efficientvit_m* with the same weights, as shipped
  (eager, NCHW);
* ``eager`` / ``deploy``: ours as built / BatchNorm folded (convs with
  their ReLU and adds fused, :mod:`efficientvit_mm.deploy.cpu_conv`;
  depthwise convs and attention heads through our kernels,
  :mod:`efficientvit_mm.deploy.native`), channels_last, fp32; from its
  second call with a shape the deploy backbone replays its operator calls
  from C++ (:mod:`efficientvit_mm.deploy.replay`);
* ``compile``: the deploy model through ``torch.compile`` with inductor's
  weight freezing and C++ wrapper
  (:func:`efficientvit_mm.deploy.compiled.compile_for_inference`), fp32;
* ``bf16``: the deploy model in bfloat16 (fp32 in and out), only where the
  CPU has bf16 matrix units (AMX or AVX512-BF16): the table says which;
* ``ort fp32`` / ``ort int8``: the exported deploy classifier in
  onnxruntime (one intra-op thread), and its static INT8 twin (QDQ,
  per-channel weights; calibrated here on random inputs, which sets its
  speed, not its accuracy: see docs/deployment.md for accuracy).

Targets (issue 12): the fastest path >= 2.0x timm eager and >= 1.3x ort fp32
on a CPU with bf16 units; PyTorch fp32 deploy >= 0.9x ort fp32 (the table
gives it for the eager deploy model, dep/ort, and compiled, cmp/ort).
Needs timm, onnx, onnxruntime. Eager models allocate many large maps: on
this VM their speed depends on page faults;
``MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000``
keeps freed memory in the process (the comparison without that cost).
"""
import os.path as osp
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def ort_models(net, cfg, tmp: str, batch: int, threads: int = 1) -> dict:
    """onnxruntime fp32 and INT8 sessions of the deploy classifier."""
    import copy

    import torch

    from efficientvit_mm.benchmarking.inference import onnx_runtimes
    gen = torch.Generator().manual_seed(0)
    batches = [
        torch.randn(batch, 3, 224, 224, generator=gen).numpy()
        for _ in range(2)
    ]
    runtimes = onnx_runtimes(
        copy.deepcopy(net.model), cfg, (224, 224), tmp, batches, threads)
    return {f'ort {kind}': (fn, ) * 2 for kind, fn in runtimes.items()}


def measure(arch: str, repeats: int) -> dict:
    """The figures of every path for one arch."""
    import torch

    from efficientvit_mm.apis import tensor_model
    from efficientvit_mm.benchmarking.inference import (TIMM, benchmark,
                                                        prepare, timm_twin)
    from efficientvit_mm.deploy.precision import bf16_supported
    from efficientvit_mm.runtime import load_config
    torch.set_num_threads(1)
    config = osp.join(ROOT, 'configs', f'efficientvit_{arch}_in1k.py')
    cfg = load_config(config)
    net = tensor_model(cfg, (224, 224))
    twin = timm_twin(net.model, arch).eval()
    example = torch.randn(16, 3, 224, 224)
    modes = ['eager', 'deploy', 'compile'
             ] + (['bf16'] if bf16_supported() else [])
    models = {mode: (prepare(net, mode, example), ) * 2 for mode in modes}
    models[TIMM] = (twin, twin)
    layouts = {name: name in modes for name in models}
    with tempfile.TemporaryDirectory() as tmp:
        models.update(ort_models(net, cfg, tmp, 16))
        layouts.update({name: False for name in models if name not in layouts})
        return benchmark(models, 16, (224, 224), 'cpu', channels_last=layouts,
                         repeats=repeats)


def main(argv=None):
    from efficientvit_mm.runtime.args import parse_arch_benchmark
    args = parse_arch_benchmark(__file__, __doc__.split('\n')[0], argv)
    from efficientvit_mm.benchmarking import describe_machine
    from efficientvit_mm.benchmarking.inference import TIMM
    from efficientvit_mm.benchmarking.machine import write_figures
    table = {}
    for arch in args.archs:
        table[arch] = res = measure(arch, args.repeats)
        print(
            f'{arch}: ' + ', '.join(f'{k} {v["images_per_s"]:.1f}'
                                    for k, v in res.items()), flush=True)
    paths = [p for p in next(iter(table.values())) if p != TIMM]
    print(f'\n{describe_machine()} | 1 thread, batch 16, 224x224, img/s')
    print(f'{"arch":<6}{TIMM:>11}' + ''.join(f'{p:>10}' for p in paths) +
          f'{"best":>10}{"best/timm":>10}{"best/ort":>9}{"dep/ort":>8}'
          f'{"cmp/ort":>8}')
    for arch, res in table.items():
        speed = {k: v['images_per_s'] for k, v in res.items()}
        best = max((p for p in paths if p != 'ort fp32'), key=speed.get)
        print(f'{arch:<6}{speed[TIMM]:>11.1f}' + ''.join(f'{speed[p]:>10.1f}'
                                                         for p in paths) +
              f'{best:>10}{speed[best] / speed[TIMM]:>9.2f}x'
              f'{speed[best] / speed["ort fp32"]:>8.2f}x'
              f'{speed["deploy"] / speed["ort fp32"]:>7.2f}x'
              f'{speed["compile"] / speed["ort fp32"]:>7.2f}x')
    write_figures(args.json, table)
    return table


if __name__ == '__main__':
    main()
