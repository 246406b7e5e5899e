"""What ``tools/export_onnx.py`` and ``tools/infer_onnx.py`` do, as
functions of their parsed arguments (the tools only parse)."""
import os.path as osp
from typing import List, Sequence, Tuple

import torch

from ..errors import UserError


def say(msg: str) -> None:
    print(msg, flush=True)


def check_shapes(shape: Sequence[int]) -> List[Tuple[int, int]]:
    """Input sizes a graph exported at ``shape`` is checked at: odd sizes
    about half of it (maps smaller than a window), the size itself, and
    odd sizes a quarter above it."""
    h, w = shape
    return [(max(33, h // 2 | 1), max(33, w // 2 | 1)), (h, w),
            ((h + h // 4) | 1, (w + w // 4) | 1)]


def _format(diffs: dict) -> str:
    return ', '.join(f'{k} {v:.2e}' for k, v in diffs.items())


def check_graph_sizes(session, reference, task: str, part: str,
                      shape: Sequence[int]) -> bool:
    """Compare the graph with PyTorch on random inputs of
    :func:`check_shapes`; prints one line per size."""
    from .onnx import check_graph, tolerance
    ok = True
    batch = 2 if task == 'classification' or part == 'backbone' else 1
    sizes = check_shapes(shape)
    inputs = [torch.randn(batch, 3, *size) for size in sizes]
    for size, diffs in zip(sizes, check_graph(session, reference, inputs)):
        bad = [k for k, v in diffs.items() if v > tolerance(k)]
        ok &= not bad
        say(f'onnxruntime vs PyTorch at {batch}x3x{size[0]}x{size[1]}: '
            f'{_format(diffs)}' +
            (f'  <- over tolerance: {bad}' if bad else ''))
    return ok


def report_verification(result) -> bool:
    """Print what :func:`.verify.verify` found; False when out of
    tolerance."""
    say(f'val set, {result.num_images} images, onnxruntime vs PyTorch: '
        f'{_format(result.agreement)}')
    for runtime, metrics in result.metrics.items():
        say(f'  {runtime:>8}: ' + ', '.join(f'{k} {v:.2f}'
                                            for k, v in metrics.items()))
    bad = result.failures()
    for line in bad:
        say(f'  out of tolerance: {line}')
    return not bad


def export_main(args) -> int:
    """Export, check at several sizes, verify on the val set, time."""
    from ..apis import DEFAULT_SHAPES, build_model
    from ..runtime import load_config, task_of
    from . import onnx
    cfg = load_config(args.config, args.cfg_options)
    task = task_of(cfg)
    part = 'backbone' if args.backbone else 'model'
    shape = args.shape or DEFAULT_SHAPES[task]
    torch.set_num_threads(args.threads)
    model = build_model(cfg, args.checkpoint)
    reference = onnx.export_model(model, cfg, shape, args.output, part,
                                  args.opset)
    what = ('backbone' if part == 'backbone' else dict(
        classification='classifier, logits', detection='detector with NMS',
        segmentation='segmentor, label map')[task])
    say(f'exported {task} model ({what}, deploy mode, opset {args.opset}) '
        f'to {args.output}')
    session = onnx.ort_session(args.output, args.threads)
    ok = check_graph_sizes(session, reference, task, part, shape)
    if part == 'model' and not args.no_verify:
        ok &= _verify_and_time(cfg, model, args)
    elif not args.no_benchmark:
        _time_graph(session, reference, shape)
    say('check passed' if ok else 'FAILED: see the lines above')
    return 0 if ok else 1


def _verify_and_time(cfg, model, args) -> bool:
    from .onnx_predictor import OnnxPredictor
    from .verify import latency_ms, val_dataset, verify
    predictor = OnnxPredictor(args.output, cfg, args.threads)
    dataset = val_dataset(cfg)
    result = verify(cfg, model, predictor, args.val_images, args.score_thr,
                    progress=lambda m: say(f'  {m}'), dataset=dataset)
    ok = report_verification(result)
    if not args.no_benchmark:
        from mmengine.dataset import pseudo_collate
        batch = pseudo_collate([dataset[0]])
        ms = latency_ms(model, predictor, batch)
        say(f'latency, one val image, {args.threads} thread(s), from the '
            f'loaded image to predictions: PyTorch deploy '
            f'{ms["pytorch"]:.1f} ms | onnxruntime {ms["onnxruntime"]:.1f} '
            'ms')
    return ok


def _time_graph(session, reference, shape) -> None:
    from ..benchmarking.timing import median, time_interleaved
    x = torch.randn(1, 3, *shape)
    feed = {'input': x.numpy()}
    times = time_interleaved(
        dict(pytorch=lambda: reference([x]),
             onnxruntime=lambda: session.run(None, feed)), warmup=2, repeats=7)
    say(f'latency, batch 1, {shape[0]}x{shape[1]}: PyTorch deploy '
        f'{1e3 * median(times["pytorch"]):.1f} ms | onnxruntime '
        f'{1e3 * median(times["onnxruntime"]):.1f} ms')


def infer_main(args) -> int:
    """Predict image files with an exported model and draw the
    predictions."""
    from ..runtime import load_config
    from .onnx_predictor import OnnxPredictor
    from .visualize import draw_predictions
    cfg = load_config(args.config, args.cfg_options)
    missing = [p for p in args.images if not osp.isfile(p)]
    if missing:
        raise UserError(f'no such image file: {", ".join(missing)}')
    if not osp.isfile(args.model):
        raise UserError(f'no such ONNX file: {args.model}')
    by_name = {}
    for path in args.images:  # drawings are named after the image file
        other = by_name.setdefault(osp.basename(path), path)
        if other != path:
            raise UserError(
                f'{other} and {path} would both be drawn to '
                f'{osp.join(args.out_dir, osp.basename(path))}: run them '
                f'with separate --out-dir folders')
    torch.set_num_threads(args.threads)
    predictor = OnnxPredictor(args.model, cfg, args.threads)
    samples = predictor.predict_files(args.images)
    for path in draw_predictions(cfg, samples, args.out_dir, args.score_thr):
        say(f'wrote {path}')
    return 0
