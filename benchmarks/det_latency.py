"""Whole-detector CPU latency: RetinaNet-EfficientViT-M4 beside mmdet's
RetinaNet-R18, run the same way, in one process.

    .venv/bin/python benchmarks/det_latency.py [--shape 800 1333]
        [--threads 1] [--repeats 7] [--no-onnx]

Each detector runs ``predict`` (backbone, neck, head and post-processing
with NMS) on one preprocessed 800x1333 image, batch 1, in each of:

* ``eager``: as built (NCHW, fp32);
* ``folded``: every BatchNorm folded into its conv (ours: switch_to_deploy,
  whose convs then run with their ReLU and adds fused,
  :mod:`efficientvit_mm.deploy.cpu_conv`; R18: mmcv's fuse_conv_bn),
  channels_last, fp32;
* ``bf16``: the folded model with its backbone, neck and head in bfloat16
  (fp32 in and out, so NMS and box decoding stay fp32), only on a CPU with
  bf16 matrix units;
* ``onnx fp32`` / ``onnx int8``: the whole detector exported with its NMS
  (the export of ``tools/export_onnx.py``) in onnxruntime, and its static
  INT8 twin (:func:`efficientvit_mm.deploy.quantize.quantize_int8`,
  calibrated on one random image: it sets the speed, not the accuracy);
  needs onnx, onnxruntime and mmdeploy (``--no-onnx`` leaves them out).

Weights are random (speed does not depend on them; with RetinaNet's prior
on the class bias few boxes pass the score threshold, for both models
alike). The median of interleaved timed runs is reported.
"""
import copy
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not

MODELS = {
    'RetinaNet EfficientViT-M4': 'retinanet_efficientvit_m4_coco.py',
    'RetinaNet R18 (mmdet)': 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
}


class Predict:
    """``model.predict`` on a preprocessed image tensor, as a callable."""

    def __init__(self, model, samples):
        self.model = model
        self.samples = samples

    def __call__(self, x):
        return self.model(x, self.samples, mode='predict')


def folded_copy(name: str, model):
    """A copy of ``model`` with every BatchNorm folded (ours:
    switch_to_deploy; R18: mmcv's fuse_conv_bn), eval mode, channels_last."""
    import torch
    from mmcv.cnn import fuse_conv_bn

    from efficientvit_mm.deploy import switch_to_deploy
    folded = copy.deepcopy(model)
    if 'EfficientViT' in name:
        switch_to_deploy(folded)
    else:
        fuse_conv_bn(folded)
    return folded.eval().to(memory_format=torch.channels_last)


def variants(name: str, model, folded, samples, bf16: bool) -> dict:
    """The ways one detector runs in PyTorch: {label: callable}."""
    from efficientvit_mm.deploy.precision import to_bf16
    out = {
        f'{name} eager': Predict(model, samples),
        f'{name} folded': Predict(folded, samples)
    }
    if bf16:
        out[f'{name} bf16'] = Predict(to_bf16(copy.deepcopy(folded)), samples)
    return out


def onnx_variants(name: str, folded, cfg, shape, folder: str, threads: int,
                  calibration) -> dict:
    """The exported detector in onnxruntime, fp32 and INT8: {label:
    callable of the preprocessed image}."""
    from efficientvit_mm.benchmarking.inference import onnx_runtimes
    os.makedirs(folder)
    runtimes = onnx_runtimes(
        copy.deepcopy(folded), cfg, shape, folder, [calibration], threads)
    return {f'{name} onnx {kind}': fn for kind, fn in runtimes.items()}


def main(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1333],
                        metavar=('H', 'W'))
    cli.add_threads(parser, 1, ', as the paper measures')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--no-onnx', action='store_true',
                        help='leave out the onnxruntime fp32 and INT8 runs')
    args = parser.parse_args(argv)
    import tempfile

    import torch

    from efficientvit_mm.apis import build_model, data_samples
    from efficientvit_mm.benchmarking import describe_machine
    from efficientvit_mm.benchmarking.timing import median, time_interleaved
    from efficientvit_mm.deploy.precision import bf16_supported
    from efficientvit_mm.runtime import drop_pretrained, load_config
    torch.set_num_threads(args.threads)
    h, w = args.shape
    samples = data_samples('detection', (h, w))
    x = torch.randn(1, 3, h, w)
    steps = {}
    tmp = tempfile.TemporaryDirectory()
    calibration = torch.randn(1, 3, h, w).numpy()
    for name, config in MODELS.items():
        cfg = load_config(config if '::' in
                          config else osp.join(ROOT, 'configs', config))
        drop_pretrained(cfg.model)
        model = build_model(cfg).eval()
        folded = folded_copy(name, model)
        runs = variants(name, model, folded, samples, bf16_supported())
        if not args.no_onnx:
            runs.update(
                onnx_variants(name, folded, cfg, (h, w),
                              osp.join(tmp.name,
                                       name.split()[1]), args.threads,
                              calibration))
        for label, fn in runs.items():
            inp = x if 'eager' in label or 'onnx' in label else \
                x.contiguous(memory_format=torch.channels_last)
            steps[label] = (lambda fn=fn, inp=inp: fn(inp))
    with torch.inference_mode():
        seconds = time_interleaved(steps, 2, args.repeats)
    tmp.cleanup()
    print(f'{describe_machine()} | {args.threads} thread(s), batch 1, '
          f'{h}x{w}, whole predict (NMS included), ms')
    for label, runs in seconds.items():
        print(f'{label:<44}{median(runs) * 1e3:>10.1f}')
    ours = [k for k in seconds if 'EfficientViT' in k]
    best = min(ours, key=lambda k: median(seconds[k]))
    same = best.replace('RetinaNet EfficientViT-M4', 'RetinaNet R18 (mmdet)')
    ratio = median(seconds[same]) / median(seconds[best])
    print(f'our best path: {best.strip()}; {same.strip()} run the same way '
          f'takes {ratio:.2f}x its latency')
    return seconds


if __name__ == '__main__':
    main()
