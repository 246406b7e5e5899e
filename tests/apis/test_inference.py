"""tools/demo.py and efficientvit_mm.apis.run_demo: predictions and
drawings on generated images, a folder and a short generated video, for
each task, with random weights saved as a checkpoint."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from efficientvit_mm.apis import build_model, run_demo
from efficientvit_mm.errors import CheckpointMismatchError, InputError
from efficientvit_mm.runtime import load_config
from helpers import ROOT, load_tool

CONFIGS = {
    'det': 'configs/demo/retinanet_efficientvit_m0_shapes.py',
    'ins': 'configs/custom/mask_rcnn_efficientvit_m4_custom_coco.py',
    'seg': 'configs/demo/fpn_efficientvit_m0_shapes_seg.py',
    'cls': 'configs/demo/efficientvit_m0_shapes_cls.py',
}
# a few detections an image (random weights score everything alike), and
# Mask R-CNN on the M0 backbone: the same code, a smaller file
OPTIONS = {
    'det': {
        'model.test_cfg.max_per_img': 8
    },
    'ins': {
        'model.backbone.arch': 'm0',
        'model.neck.in_channels': [64, 128, 192],
        'model.test_cfg.rcnn.max_per_img': 8
    }
}


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """A folder of three 96x96 shapes scenes and a 4-frame video of them."""
    from efficientvit_mm.datasets import ShapesGenerator
    root = tmp_path_factory.mktemp('demo_inputs')
    scenes = [
        s.image for s in ShapesGenerator(image_size=96, seed=3).scenes(4)
    ]
    folder = root / 'folder'
    folder.mkdir()
    for i, image in enumerate(scenes[:3]):
        cv2.imwrite(str(folder / f'scene_{i}.jpg'), image[..., ::-1])
    (folder / 'notes.txt').write_text('not an image')
    video = str(root / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (96, 96))
    assert writer.isOpened()
    for image in scenes:
        writer.write(np.ascontiguousarray(image[..., ::-1]))
    writer.release()
    return dict(
        folder=str(folder), image=str(folder / 'scene_0.jpg'), video=video)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Random weights of each task's model, saved as training saves them."""
    root = tmp_path_factory.mktemp('demo_ckpts')
    out = {}
    for task, config in CONFIGS.items():
        cfg = load_config(osp.join(ROOT, config), OPTIONS.get(task))
        path = str(root / f'{task}.pth')
        torch.save(dict(state_dict=build_model(cfg).state_dict()), path)
        out[task] = path
    return out


def demo(task, images, checkpoints, tmp_path, source='folder', **kwargs):
    return run_demo(images[source], osp.join(ROOT,
                                             CONFIGS[task]), checkpoints[task],
                    str(tmp_path / task), cfg_options=OPTIONS.get(task),
                    **kwargs)


def saved(tmp_path, task):
    with open(tmp_path / task / 'predictions.json') as f:
        return json.load(f)


def test_detection_folder_and_threshold(images, checkpoints, tmp_path):
    out = demo('det', images, checkpoints, tmp_path, score_thr=0.0)
    assert out == saved(tmp_path, 'det')
    assert out['task'] == 'detection' and out['input_kind'] == 'folder'
    assert [osp.basename(r['file']) for r in out['results']
            ] == ['scene_0.jpg', 'scene_1.jpg', 'scene_2.jpg']
    classes = ['circle', 'square', 'triangle', 'star']
    assert out['classes'] == classes  # the config's metainfo
    for record in out['results']:
        assert record['instances'], 'score_thr=0 keeps every detection'
        for inst in record['instances']:
            assert inst['class_name'] == classes[inst['label']]
            x1, y1, x2, y2 = inst['bbox']
            assert x1 <= x2 and y1 <= y2 and 0 <= inst['score'] <= 1
        drawn = cv2.imread(
            str(tmp_path / 'det' / 'vis' / osp.basename(record['file'])))
        assert drawn.shape == (96, 96, 3)
    scores = [i['score'] for r in out['results'] for i in r['instances']]
    thr = float(np.median(scores))
    strict = demo('det', images, checkpoints, tmp_path, score_thr=thr)
    kept = [i['score'] for r in strict['results'] for i in r['instances']]
    assert kept and min(kept) >= thr and len(kept) < len(scores)


def test_detection_video(images, checkpoints, tmp_path, capsys):
    out = demo('det', images, checkpoints, tmp_path, source='video',
               score_thr=0.0)
    assert out['input_kind'] == 'video'
    assert [r['frame'] for r in out['results']] == [0, 1, 2, 3]
    # progress on the way, the drawn video next to the JSON
    assert '[demo] 4/4 frames' in capsys.readouterr().out
    capture = cv2.VideoCapture(str(tmp_path / 'det' / 'vis' / 'clip.mp4'))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 4


def test_instance_masks(images, checkpoints, tmp_path):
    from pycocotools import mask as mask_utils
    out = demo('ins', images, checkpoints, tmp_path, source='image',
               score_thr=0.0)
    (record, ) = out['results']
    assert record['instances']
    for inst in record['instances']:
        rle = dict(inst['mask'], counts=inst['mask']['counts'].encode())
        assert mask_utils.decode(rle).shape == (96, 96)


def test_semantic_segmentation_label_maps(images, checkpoints, tmp_path):
    out = demo('seg', images, checkpoints, tmp_path)
    assert out['classes'][0] == 'background' and len(out['classes']) == 5
    for record in out['results']:
        labels = cv2.imread(
            str(tmp_path / 'seg' / record['label_map']), cv2.IMREAD_UNCHANGED)
        assert labels.shape == (96, 96) and labels.max() < 5
        assert sum(record['pixel_share'].values()) == pytest.approx(1, 1e-3)


def test_classification_through_the_tool(images, checkpoints, tmp_path):
    out_dir = tmp_path / 'cls'
    main = load_tool('demo').main
    assert main([
        images['image'],
        osp.join(ROOT, CONFIGS['cls']), checkpoints['cls'], '--out-dir',
        str(out_dir), '--score-thr', '0'
    ]) == 0
    (record, ) = saved(tmp_path, 'cls')['results']
    scores = record['classes']
    assert len(scores) == 4 and record['score'] == max(scores.values())
    assert scores[record['class_name']] == record['score']
    assert osp.isfile(out_dir / 'vis' / 'scene_0.jpg')


@pytest.mark.parametrize('problem', ['missing', 'folder', 'suffix', 'thr'])
def test_bad_inputs(problem, images, checkpoints, tmp_path):
    inputs = dict(
        missing=str(tmp_path / 'nope.jpg'), folder=str(tmp_path),
        suffix=osp.join(images['folder'], 'notes.txt'), thr=images['image'])
    message = dict(missing='not found', folder='holds no images',
                   suffix='neither an image', thr='--score-thr')[problem]
    with pytest.raises(InputError, match=message):
        run_demo(inputs[problem], osp.join(ROOT,
                                           CONFIGS['cls']), checkpoints['cls'],
                 str(tmp_path / 'out'),
                 score_thr=2.0 if problem == 'thr' else 0.3)


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible')
def test_cuda_without_gpu(images, checkpoints, tmp_path):
    with pytest.raises(InputError, match='no CUDA GPU'):
        demo('cls', images, checkpoints, tmp_path, device='cuda')


def test_checkpoint_of_another_model(images, checkpoints, tmp_path):
    with pytest.raises(CheckpointMismatchError):
        run_demo(images['image'], osp.join(ROOT, CONFIGS['cls']),
                 checkpoints['det'], str(tmp_path / 'out'))
