"""The synthetic shapes generator and its three exporters."""
import json
import os

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from efficientvit_mm.datasets import (DEFAULT_CLASSES, ShapesGenerator,
                                      export_ade, export_coco, export_crops,
                                      split_seed)
from efficientvit_mm.datasets.shapes import main as shapes_main


def test_scenes_are_a_pure_function_of_seed_and_index():
    a = ShapesGenerator(image_size=96, seed=3)
    b = ShapesGenerator(image_size=96, seed=3)
    c = ShapesGenerator(image_size=96, seed=4)
    for i in (0, 5):
        sa, sb = a.scene(i), b.scene(i)
        assert np.array_equal(sa.image, sb.image)
        assert np.array_equal(sa.labels, sb.labels)
        assert np.array_equal(sa.masks, sb.masks)
    assert not np.array_equal(a.scene(0).image, c.scene(0).image)
    assert split_seed(0, 'train') != split_seed(0, 'val')


def test_scene_annotations_describe_visible_pixels():
    gen = ShapesGenerator(
        image_size=(96, 128), num_objects=(3, 6), min_visible=0.5, seed=0)
    overlaps = 0
    labels = set()
    for scene in gen.scenes(40):
        assert scene.image.shape == (96, 128, 3)
        assert scene.image.dtype == np.uint8
        masks = scene.masks
        # visible masks never overlap: a later object hides what is below
        assert (masks.sum(0) <= 1).all()
        label_map = scene.label_map()
        assert set(np.unique(label_map)) <= set(range(len(gen.classes) + 1))
        for inst, box in zip(scene.instances, scene.boxes):
            ys, xs = np.nonzero(inst.mask)
            assert inst.area == len(xs) >= gen.min_area
            assert box.tolist() == [
                xs.min(), ys.min(),
                xs.max() + 1, ys.max() + 1
            ]
            assert (label_map[inst.mask] == inst.label + 1).all()
            # polygons rasterise back to exactly the visible mask
            rle = mask_utils.merge(
                mask_utils.frPyObjects(inst.polygons, 96, 128))
            assert np.array_equal(
                mask_utils.decode(rle).astype(bool), inst.mask)
            labels.add(inst.label)
        # count objects whose box overlaps another's
        boxes = scene.boxes
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                lo = np.maximum(boxes[i, :2], boxes[j, :2])
                hi = np.minimum(boxes[i, 2:], boxes[j, 2:])
                overlaps += bool((hi > lo).all())
    assert labels == set(range(len(DEFAULT_CLASSES)))
    assert overlaps > 0  # the set does contain overlapping objects


def test_sizes_vary_over_the_requested_range():
    gen = ShapesGenerator(image_size=128, size_range=(0.06, 0.3), seed=1)
    sides = [max(i.bbox[2:]) for s in gen.scenes(30) for i in s.instances]
    assert min(sides) < 20 and max(sides) > 50


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='unknown shape classes'):
        ShapesGenerator(classes=('circle', 'blob'))
    with pytest.raises(ValueError, match='size_range'):
        ShapesGenerator(size_range=(0.3, 0.1))


def test_export_coco(tmp_path):
    files = export_coco(
        str(tmp_path), dict(train=6, val=3), seed=0, image_size=64)
    coco = COCO(files['train'])
    assert len(coco.getImgIds()) == 6
    assert [c['name']
            for c in coco.loadCats(coco.getCatIds())] == list(DEFAULT_CLASSES)
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns and all(a['iscrowd'] == 0 for a in anns)
    for ann in anns:
        img = coco.loadImgs(ann['image_id'])[0]
        assert os.path.isfile(tmp_path / 'train' / img['file_name'])
        x, y, w, h = ann['bbox']
        m = coco.annToMask(ann)
        assert m.sum() == ann['area']
        ys, xs = np.nonzero(m)
        assert [
            xs.min(),
            ys.min(),
            xs.max() + 1 - xs.min(),
            ys.max() + 1 - ys.min()
        ] == [x, y, w, h]
    val = json.load(open(files['val']))
    assert len(val['images']) == 3
    # train and val are drawn from different seeds
    a = cv2.imread(str(tmp_path / 'train' / '000000.jpg'))
    b = cv2.imread(str(tmp_path / 'val' / '000000.jpg'))
    assert not np.array_equal(a, b)


def test_export_ade_label_maps(tmp_path):
    dirs = export_ade(
        str(tmp_path), dict(training=4, validation=2), image_size=64)
    img_dir, ann_dir = dirs['training']
    assert sorted(os.listdir(img_dir)) == [f'{i:06d}.jpg' for i in range(4)]
    gen = ShapesGenerator(image_size=64, seed=split_seed(0, 'training'))
    for i in range(4):
        label = cv2.imread(
            os.path.join(ann_dir, f'{i:06d}.png'), cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint8 and label.ndim == 2
        assert np.array_equal(label, gen.scene(i).label_map())
    assert len(os.listdir(dirs['validation'][1])) == 2
    classes = open(tmp_path / 'classes.txt').read().split()
    assert classes == ['background'] + list(DEFAULT_CLASSES)


def test_export_crops_folder_layout(tmp_path):
    counts = export_crops(
        str(tmp_path), dict(train=10, val=4), image_size=96, crop_size=32)
    for split in ('train', 'val'):
        assert sorted(os.listdir(tmp_path / split)) == sorted(DEFAULT_CLASSES)
        files = [
            f for c in DEFAULT_CLASSES
            for f in os.listdir(tmp_path / split / c)
        ]
        assert len(files) == counts[split] > 0
    crop = cv2.imread(
        str(tmp_path / 'train' / 'circle' /
            os.listdir(tmp_path / 'train' / 'circle')[0]))
    assert crop.shape == (32, 32, 3)
    # the crops of a scene are its objects, with their labels
    gen = ShapesGenerator(image_size=96, seed=split_seed(0, 'train'))
    scene = gen.scene(0)
    for k, inst in enumerate(scene.instances):
        name = f'000000_{k}.png'
        if min(inst.bbox[2:]) >= 8:
            assert os.path.isfile(tmp_path / 'train' /
                                  DEFAULT_CLASSES[inst.label] / name)


def test_cli_writes_coco(tmp_path, capsys):
    assert shapes_main([
        'coco',
        str(tmp_path), '--splits', 'train=2,val=1', '--image-size', '48', '64'
    ]) == 0
    data = json.load(open(tmp_path / 'annotations' / 'instances_train.json'))
    assert data['images'][0]['height'] == 48
    assert data['images'][0]['width'] == 64
    with pytest.raises(SystemExit):
        shapes_main(['coco', str(tmp_path), '--splits', 'train'])
