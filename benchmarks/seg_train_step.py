"""CPU training-step time: Semantic FPN with EfficientViT-M4 against mmseg's
Semantic FPN with ResNet-50, in the same run, on the same batch.

    .venv/bin/python benchmarks/seg_train_step.py [--shape 512 512]
        [--batch-size 2] [--repeats 5] [--threads N]

A step is what the Runner does each iteration: ``model.train_step`` (data
preprocessor, forward, loss, backward) and the optimizer step of each
config's own optim_wrapper (AdamW for EfficientViT, SGD for ResNet-50).
Both models see the same images and label maps; they are timed in turn
(interleaved), after warm-up, and the median of ``--repeats`` steps is
reported, so a busy spell of the machine hits both alike. Weights are
random (no download): speed does not depend on them. SyncBN becomes BN, as
in any single-process run.
"""
import argparse
import os
import os.path as osp
import statistics
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from efficientvit_mm.runtime.config import quiet_import_warnings  # noqa: E402

quiet_import_warnings()

MODELS = {
    'Semantic FPN EfficientViT-M4':
    osp.join(ROOT, 'configs', 'fpn_efficientvit_m4_ade20k.py'),
    'Semantic FPN ResNet-50 (mmseg)':
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 512],
                        metavar=('H', 'W'), help='input size (default 512)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed steps per model (default 1)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed steps per model (default 5)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch decides, '
                        f'{os.cpu_count()} cores here)')
    args = parser.parse_args(argv)
    if min(args.shape) < 64 or args.batch_size < 2 or args.repeats < 1:
        parser.error('needs --shape >= 64, --batch-size >= 2 (BatchNorm in '
                     'training mode), --repeats >= 1')
    return args


def make_batch(batch_size: int, shape, num_classes: int = 150, seed: int = 0):
    """What the dataloader hands the model: uint8 images, label maps."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                                    generator=g))
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, h, w), generator=g))
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def main(argv=None):
    args = parse_args(argv)
    import torch

    import efficientvit_mm  # noqa: F401
    from efficientvit_mm.apis import count_complexity
    from efficientvit_mm.apis.measure import time_interleaved
    from efficientvit_mm.apis.train_step import (build_for_training,
                                                 load_any_config)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = make_batch(args.batch_size, args.shape)

    models = {name: build_for_training(cfg) for name, cfg in MODELS.items()}
    times = time_interleaved(
        {name: (lambda m=m, w=w: m.train_step(batch, w))
         for name, (m, w) in models.items()}, args.warmup, args.repeats)

    print(f'CPU train step, batch {args.batch_size} x 3 x {args.shape[0]} x '
          f'{args.shape[1]}, {torch.get_num_threads()} threads, median of '
          f'{args.repeats} (torch {torch.__version__})')
    print(f'{"model":34s} {"params":>8s} {"GFLOPs/img":>10s} {"s/step":>8s} '
          f'{"img/s":>7s}')
    for name, config in MODELS.items():
        cx = count_complexity(load_any_config(config), args.shape)
        sec = statistics.median(times[name])
        print(f'{name:34s} {cx["params"] / 1e6:7.1f}M '
              f'{cx["flops"] / 1e9:10.1f} {sec:8.2f} '
              f'{args.batch_size / sec:7.2f}')
    first, second = (statistics.median(t) for t in times.values())
    print(f'EfficientViT-M4 step time = {first / second:.2f} x ResNet-50\'s')


if __name__ == '__main__':
    main()
