"""Inference speed of EfficientViT models: images/s, batch-1 latency, memory.

    python tools/benchmark.py --arch m4                       # paper CPU method
    python tools/benchmark.py --arch m4 --mode eager deploy --compare-timm
    python tools/benchmark.py --arch m4 --device cuda --amp --batch-size 2048 \\
        --mode deploy cudagraph --json m4_gpu.json
    python tools/benchmark.py configs/retinanet_efficientvit_m4_coco.py \\
        --shape 800 1333 --batch-size 1

Modes (several may be given; they are timed interleaved in one process):
eager (as built), deploy (BatchNorm folded by switch_to_deploy), compile
(deploy + torch.compile) and cudagraph (deploy captured in a CUDA graph).
Our modes run channels_last unless --no-channels-last. With --compare-timm,
timm's efficientvit_m* gets the same weights and is timed beside them, as
shipped (eager, NCHW), and the ratio to it is printed.
"""
import argparse
import json
import os
import platform
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import efficientvit_mm  # noqa: E402,F401
import torch  # noqa: E402
from efficientvit_mm.apis import build_model, load_config, task_of  # noqa
from efficientvit_mm.apis.benchmark import (MODES, CudaGraphRunner,  # noqa
                                            benchmark, prepare)
from efficientvit_mm.apis.complexity import (DEFAULT_SHAPES,  # noqa: E402
                                             TensorForward, data_samples)
from efficientvit_mm.models.utils import split_efficientvit_state_dict  # noqa


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', nargs='?', help='config file (or --arch)')
    parser.add_argument('--arch', choices=[f'm{i}' for i in range(6)],
                        help='the ImageNet classifier configs/'
                        'efficientvit_<arch>_in1k.py')
    parser.add_argument('--batch-size', type=int,
                        help='default: 16 on the CPU, 2048 on CUDA')
    parser.add_argument('--shape', type=int, nargs='+', metavar='N',
                        help='H W or one size (default: 224 for '
                        'classification, 800 1333 detection, 512 '
                        'segmentation)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int,
                        help='CPU threads (default: 1 on the CPU, as the '
                        'paper measures)')
    parser.add_argument('--amp', action='store_true',
                        help='autocast: fp16 on CUDA, bf16 on the CPU')
    parser.add_argument('--mode', nargs='+', choices=MODES,
                        default=['eager', 'deploy'])
    parser.add_argument('--no-channels-last', action='store_true',
                        help='keep NCHW memory format for our modes')
    parser.add_argument('--compare-timm', action='store_true',
                        help="time timm's efficientvit_m* with the same "
                        'weights (needs `pip install timm`)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=7,
                        help='timed runs per mode; the median is reported')
    parser.add_argument('--iters', type=int, default=3,
                        help='forward passes per timed run')
    parser.add_argument('--json', metavar='PATH',
                        help='also write the figures to this JSON file')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.arch is None):
        parser.error('give a config or --arch, not both')
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H W or one size, got {args.shape}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is visible')
    if 'cudagraph' in args.mode and args.device != 'cuda':
        parser.error('cudagraph mode needs --device cuda')
    return args


def timm_twin(model, arch: str):
    """timm's efficientvit_<arch> holding the same weights as ``model``."""
    try:
        import timm
    except ModuleNotFoundError:
        raise SystemExit('--compare-timm needs timm: pip install timm') \
            from None
    head = model.model.head
    twin = timm.create_model(f'efficientvit_{arch}',
                             num_classes=head.num_classes)
    backbone, head_state, _ = split_efficientvit_state_dict(
        twin.state_dict())
    state = {f'backbone.{k}': v for k, v in backbone.items()}
    state.update({f'head.{k}': v for k, v in head_state.items()})
    model.model.load_state_dict(state, strict=True)
    return twin


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    if torch.cuda.is_available():
        cpu += f' | {torch.cuda.get_device_name()}'
    return cpu


def main(argv=None):
    args = parse_args(argv)
    config = args.config or os.path.join(ROOT, 'configs',
                                         f'efficientvit_{args.arch}_in1k.py')
    cfg = load_config(config)
    task = task_of(cfg)
    device = torch.device(args.device)
    if args.threads or device.type == 'cpu':
        torch.set_num_threads(args.threads or 1)
    batch = args.batch_size or (2048 if device.type == 'cuda' else 16)
    shape = DEFAULT_SHAPES[task] if args.shape is None else tuple(
        args.shape * 2 if len(args.shape) == 1 else args.shape)
    arch = args.arch or cfg.model.backbone.get('arch')

    net = TensorForward(build_model(cfg), data_samples(task, shape))
    net.eval()
    models, channels_last = {}, {}
    example = torch.randn(batch, 3, *shape, device=device)
    timm_model = None
    if args.compare_timm:
        if task != 'classification' or not isinstance(arch, str):
            raise SystemExit('--compare-timm compares ImageNet classifiers: '
                             'use --arch or an *_in1k config')
        timm_model = timm_twin(net, arch).eval().to(device)
    for mode in args.mode:
        fn = prepare(net, mode, example, not args.no_channels_last, args.amp)
        fn1 = prepare(net, mode, example[:1], not args.no_channels_last,
                      args.amp) if isinstance(fn, CudaGraphRunner) else fn
        models[mode] = (fn, fn1)
        channels_last[mode] = not args.no_channels_last
    if timm_model is not None:
        models['timm eager'] = (timm_model, timm_model)
        channels_last['timm eager'] = False

    results = benchmark(models, batch, shape, device, args.amp,
                        channels_last, args.warmup, args.repeats, args.iters)
    if timm_model is not None:
        base = results['timm eager']['images_per_s']
        for figures in results.values():
            figures['vs_timm'] = figures['images_per_s'] / base

    precision = ('fp16' if device.type == 'cuda' else 'bf16') \
        if args.amp else 'fp32'
    print(f'machine: {machine()} | torch {torch.__version__}')
    print(f'model:   {config} ({task}, {arch}) | device {args.device}, '
          f'threads {torch.get_num_threads()}, batch {batch}, '
          f'{shape[0]}x{shape[1]}, {precision}, '
          f'{"NCHW" if args.no_channels_last else "channels_last"}')
    header = f'{"mode":<12}{"img/s":>10}{"batch ms":>11}{"b1 ms":>9}' \
             f'{"peak MiB":>10}' + (f'{"vs timm":>9}' if timm_model else '')
    print(header)
    for name, f in results.items():
        line = f'{name:<12}{f["images_per_s"]:>10.1f}{f["batch_ms"]:>11.2f}' \
               f'{f["latency_ms"]:>9.2f}{f["peak_mib"]:>10.1f}'
        if timm_model is not None:
            line += f'{f["vs_timm"]:>8.2f}x'
        print(line)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine(), torch=torch.__version__,
                           config=config, task=task, arch=arch,
                           device=args.device,
                           threads=torch.get_num_threads(), batch=batch,
                           shape=list(shape), precision=precision,
                           results=results), f, indent=2)
    return results


if __name__ == '__main__':
    main()
