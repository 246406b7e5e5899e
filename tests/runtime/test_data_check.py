"""Data faults named before training (runtime/data_check, runtime/classes):
annotation files that do not parse, missing images, empty splits, classes
that do not match the heads, dropped boxes, and images that fail to load
during training."""
import json
import os
import os.path as osp
import shutil
import types

import pytest
from mmengine.config import Config

from efficientvit_mm.errors import DataFaultError
from efficientvit_mm.runtime import data_check
from efficientvit_mm.runtime.classes import check_classes, head_num_classes
from efficientvit_mm.runtime.config import load_config
from efficientvit_mm.runtime.data_check import (BAD_IMAGES_LOG,
                                                annotation_fault,
                                                build_checked, check_dataset,
                                                counting_dropped_boxes,
                                                drop_summary, guard_pipelines)
from helpers import ROOT

DET_DEMO = osp.join(ROOT, 'configs', 'demo',
                    'retinanet_efficientvit_m0_shapes.py')
SEG_DEMO = osp.join(ROOT, 'configs', 'demo',
                    'fpn_efficientvit_m0_shapes_seg.py')
MASK = osp.join(ROOT, 'configs', 'mask_rcnn_efficientvit_m4_coco.py')
CLASSES = ('circle', 'square', 'triangle', 'star')


@pytest.fixture
def coco(tmp_path, tiny_coco):
    """A copy of the tiny COCO set that a test may break."""
    root = tmp_path / 'coco'
    shutil.copytree(tiny_coco, root)
    return root


def dataset_cfg(root, split='train', **extra):
    return dict(type='CocoDataset', data_root=str(root) + '/',
                ann_file=f'annotations/instances_{split}.json',
                data_prefix=dict(img=f'{split}/'),
                metainfo=dict(classes=CLASSES),
                pipeline=[dict(type='LoadImageFromFile')], **extra)


def build(cfg):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    return DATASETS.build(cfg)


def edit_annotations(root, split, edit):
    path = root / 'annotations' / f'instances_{split}.json'
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))


def test_annotation_file_that_does_not_parse_is_named_with_its_line(coco):
    path = coco / 'annotations' / 'instances_train.json'
    path.write_text('{\n  "images": [],\n  "annotations": [,]\n}\n')
    fault = annotation_fault('train_dataloader',
                             dict(dataset=dataset_cfg(coco)))
    assert f'{path} is not valid JSON at line 3, column 19' in str(fault)
    assert 'train_dataloader.dataset' in str(fault)
    path.write_text('{"info": {}}')
    assert "no COCO annotation file: it has no 'images'" in str(
        annotation_fault('train_dataloader', dict(dataset=dataset_cfg(coco))))


def test_missing_images_are_listed_with_their_count(coco):
    gone = sorted(os.listdir(coco / 'train'))[:3]
    for name in gone:
        os.remove(coco / 'train' / name)
    with pytest.raises(DataFaultError) as err:
        check_dataset('train_dataloader', build(dataset_cfg(coco)), None)
    msg = str(err.value)
    assert '3 of the files it lists are missing' in msg
    assert all(str(coco / 'train' / name) in msg for name in gone)
    assert 'CocoDataset (' in msg and 'instances_train.json' in msg


def loader_cfg(dataset):
    return dict(batch_size=1, num_workers=0, dataset=dataset,
                sampler=dict(type='DefaultSampler', shuffle=False))


def test_an_empty_split_is_named(coco):
    from mmengine.runner import Runner
    runner = types.SimpleNamespace(build_dataloader=Runner.build_dataloader,
                                   seed=0)
    build(dataset_cfg(coco))  # the mmdet scope
    edit_annotations(coco, 'val',
                     lambda c: c.update(images=[], annotations=[]))
    val = loader_cfg(dataset_cfg(coco, 'val', test_mode=True))
    with pytest.raises(
            DataFaultError, match='instances_val.json lists no images: the '
            'split is empty .ann_file of val_dataloader.dataset'):
        build_checked(runner, 'val_dataloader', val, False)
    # filtering leaves no image of a train split: built, then named
    edit_annotations(coco, 'train', lambda c: c.update(annotations=[]))
    train = loader_cfg(
        dataset_cfg(coco, filter_cfg=dict(filter_empty_gt=True)))
    with pytest.raises(DataFaultError, match='no samples'):
        loader, _ = build_checked(runner, 'train_dataloader', train, False)
        check_dataset('train_dataloader', loader.dataset, None)


def test_dropped_boxes_are_counted(coco):

    def spoil(content):
        anns = content['annotations']
        anns[0]['bbox'][2] = -3.  # negative width
        anns[1]['category_id'] = 99  # no such category
        anns[2]['category_id'] = 99

    edit_annotations(coco, 'train', spoil)
    with counting_dropped_boxes() as drops:
        ds = build(dataset_cfg(coco))
    note = drop_summary(ds, drops[id(ds)])
    assert '3 boxes left out' in note
    assert '1 non-positive size' in note
    assert '2 unknown category id [99]' in note


def test_classes_must_match_every_head(tmp_path):
    det = load_config(DET_DEMO)
    check_classes(det)  # 4 shapes, num_classes=4
    det.model.bbox_head.num_classes = 3
    with pytest.raises(DataFaultError) as err:
        check_classes(det)
    msg = str(err.value)
    assert ('has 4 classes (circle, square, triangle, star) but '
            'model.bbox_head.num_classes is 3') in msg
    assert '--cfg-options model.bbox_head.num_classes=4' in msg

    seg = load_config(SEG_DEMO)
    check_classes(seg)
    seg.model.decode_head.num_classes = 4
    with pytest.raises(DataFaultError,
                       match='5 classes .* model.decode_head.num_classes'):
        check_classes(seg)

    paths = [p for p, _ in head_num_classes(load_config(MASK).model)]
    assert paths == ['model.roi_head.bbox_head', 'model.roi_head.mask_head']

    for name in ('cat', 'dog', 'owl'):  # mmpretrain: the class folders
        (tmp_path / 'train' / name).mkdir(parents=True)
    cls = Config(
        dict(
            model=dict(head=dict(type='LinearClsHead', num_classes=4)),
            train_dataloader=dict(
                dataset=dict(type='CustomDataset', data_root=str(tmp_path),
                             data_prefix='train'))))
    with pytest.raises(
            DataFaultError, match=r'3 classes \(cat, dog, owl\) but '
            'model.head.num_classes is 4'):
        check_classes(cls)
    # the same folder given as mmpretrain's dict(img_path=...)
    cls.train_dataloader.dataset.data_prefix = dict(img_path='train')
    with pytest.raises(DataFaultError, match=r'3 classes \(cat, dog, owl\)'):
        check_classes(cls)


def test_undecodable_images_are_skipped_up_to_the_limit(
        coco, tmp_path, capsys):
    names = sorted(os.listdir(coco / 'train'))

    def truncate(name):
        path = coco / 'train' / name
        path.write_bytes(path.read_bytes()[:200])

    truncate(names[0])
    ds = build(dataset_cfg(coco))
    log = str(tmp_path / BAD_IMAGES_LOG)
    guard_pipelines(ds, skip=True, log_path=log, fraction=0.2)  # 1 of 8
    bad = [
        i for i in range(len(ds))
        if ds.get_data_info(i)['img_path'].endswith(tuple(names[:2]))
    ]
    sample = ds[bad[0]]  # skipped: another (good) image comes instead
    assert not sample['img_path'].endswith(names[0])
    err = capsys.readouterr().err
    assert f'skipping {coco}/train/{names[0]}: AssertionError: failed to ' \
        'load image' in err
    assert '(1 skipped, at most 1 allowed)' in err
    ds[bad[0]]  # the same file in the next epoch: still one bad file
    assert '(1 skipped, at most 1 allowed)' in capsys.readouterr().err
    truncate(names[1])
    with pytest.raises(DataFaultError) as fault:
        ds[bad[1]]
    msg = str(fault.value)
    assert '2 training images could not be loaded' in msg
    assert names[0] in msg and names[1] in msg and log in msg

    val = build(dataset_cfg(coco, test_mode=True))
    guard_pipelines(val, skip=False, log_path=log, fraction=0.2)
    with pytest.raises(DataFaultError,
                       match=f'cannot load .*{names[0]} .*AssertionError'):
        val[bad[0]]


def test_files_of_a_folder_that_cannot_be_listed_are_looked_up(
        tmp_path, monkeypatch):
    """An execute-only folder (listing denied, files readable)."""
    (tmp_path / 'a.jpg').write_bytes(b'x')
    plain = os.listdir

    def denied(folder='.'):
        if str(folder) == str(tmp_path):
            raise PermissionError(13, 'Permission denied', folder)
        return plain(folder)

    monkeypatch.setattr(os, 'listdir', denied)
    paths = [str(tmp_path / 'a.jpg'), str(tmp_path / 'b.jpg')]
    assert data_check.missing_files(paths) == [str(tmp_path / 'b.jpg')]
    gone = str(tmp_path / 'gone' / 'c.jpg')  # a folder that is not there
    assert data_check.missing_files([gone]) == [gone]
