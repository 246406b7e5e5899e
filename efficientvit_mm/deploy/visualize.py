"""Drawing predictions with the config's own visualizer, as the toolboxes'
visualization hooks do for ``tools/test.py --show-dir`` (predictions
only: image files have no ground truth)."""
import os
import os.path as osp
from typing import List

from mmengine.config import Config

from ..runtime.config import task_of


def dataset_meta(cfg: Config) -> dict:
    """Class names and palette of the config's test dataset, without
    reading it: the dataset type's ``METAINFO`` updated by the config's
    ``metainfo``."""
    from mmengine.registry import DATASETS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    ds = cfg.test_dataloader.dataset
    meta = dict(getattr(DATASETS.get(ds.type), 'METAINFO', {}))
    meta.update(ds.get('metainfo') or {})
    return meta


def build_visualizer(cfg: Config):
    """The visualizer of ``cfg`` (drawing only: no storage backends)."""
    from mmengine.registry import VISUALIZERS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    vis_cfg = dict(cfg.visualizer)
    vis_cfg.pop('vis_backends', None)
    vis_cfg.update(name=f'efficientvit_mm_draw_{id(cfg)}', save_dir=None)
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset_meta(cfg)
    return visualizer


def draw_predictions(cfg: Config, samples: list, out_dir: str,
                     score_thr: float = 0.3) -> List[str]:
    """Draw each data sample's predictions on its image (``img_path``)
    into ``out_dir`` under the image's file name; returns the paths."""
    import mmcv
    task = task_of(cfg)
    visualizer = build_visualizer(cfg)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for sample in samples:
        image = mmcv.imread(sample.img_path, channel_order='rgb')
        out = osp.join(out_dir, osp.basename(sample.img_path))
        if task == 'classification':
            visualizer.visualize_cls(
                image, sample, classes=visualizer.dataset_meta.get('classes'),
                draw_gt=False, out_file=out)
        elif task == 'detection':
            visualizer.add_datasample(
                osp.basename(out), image, sample, draw_gt=False, out_file=out,
                pred_score_thr=score_thr)
        else:
            visualizer.add_datasample(
                osp.basename(out), image, sample, draw_gt=False, out_file=out)
        paths.append(out)
    return paths
