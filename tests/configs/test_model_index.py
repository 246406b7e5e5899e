"""model-index.yml and configs/metafile.yml: every model listed has a
config that exists and loads, every task config is listed, the weights are
the official release of the config's arch, and mim reads the index."""
import glob
import os.path as osp
import re

import pytest

from helpers import ROOT

INDEX = osp.join(ROOT, 'model-index.yml')
RELEASE = re.compile(r'https://github\.com/xinyuliu-jeffrey/EfficientViT_'
                     r'Model_Zoo/releases/download/v1\.0/efficientvit_'
                     r'(m[0-5])\.pth')


@pytest.fixture(scope='module')
def index():
    from modelindex.load_model_index import load
    return load(INDEX)


@pytest.fixture(scope='module')
def configs(index):
    """The loaded config of every model listed, by model name."""
    from efficientvit_mm.runtime import load_config
    out = {}
    for model in index.models:
        path = osp.join(ROOT, model.config)
        assert osp.isfile(path), f'{model.name}: {model.config} is missing'
        out[model.name] = load_config(path)
    return out


def test_every_listed_config_exists_and_loads(index, configs):
    from efficientvit_mm.runtime import task_of
    tasks = {
        'Image Classification': 'classification',
        'Object Detection': 'detection',
        'Instance Segmentation': 'detection',
        'Semantic Segmentation': 'segmentation'
    }
    assert index.models, 'the index lists no model'
    for model in index.models:
        assert model.name == osp.splitext(osp.basename(model.config))[0]
        assert model.in_collection == 'EfficientViT'
        for result in model.results or []:
            assert tasks[result.task] == task_of(configs[model.name])
            assert result.metrics and all(0 < v < 100
                                          for v in result.metrics.values())


def test_every_task_config_is_listed(index):
    listed = {m.config for m in index.models}
    configs = {
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '*.py'))
    }
    assert configs == listed


def test_weights_are_the_official_release_of_the_arch(index, configs):
    for model in index.models:
        data = model.data
        url = model.weights or data.get('Backbone Weights')
        arch = RELEASE.fullmatch(url).group(1)
        assert configs[model.name].model.backbone.arch == arch, model.name
        if model.weights:  # a classifier: converted before testing
            step = data['Converted From']['Conversion']
            assert step.startswith('python tools/convert_checkpoint.py '
                                   f'efficientvit_{arch}.pth ')
            assert step.endswith(f'--config {model.config}')


def test_paper_figures(index):
    """The paper's COCO figures and the release's ImageNet top-1."""
    by_name = {m.name: m for m in index.models}
    top1 = [
        by_name[f'efficientvit_m{i}_in1k'].results[0].metrics['Top 1 Accuracy']
        for i in range(6)
    ]
    assert top1 == [63.2, 68.4, 70.8, 73.4, 74.3, 77.1]
    assert by_name['retinanet_efficientvit_m4_coco'].results[0].metrics == {
        'box AP': 32.7,
        'box AP50': 52.2,
        'box AP75': 34.1
    }
    assert by_name['mask_rcnn_efficientvit_m4_coco'].results[0].metrics == {
        'mask AP': 31.0,
        'mask AP50': 51.2,
        'mask AP75': 32.2
    }
    paper = index.collections[0].paper
    assert 'Cascaded Group Attention' in paper['Title']


def test_mim_reads_the_index(index):
    from mim.commands.search import convert2df
    table = convert2df(index)
    assert len(table) == len(index.models)
    row = table.loc['retinanet_efficientvit_m4_coco']
    assert row['coco/box_ap'] == 32.7
    assert row['config'] == 'configs/retinanet_efficientvit_m4_coco.py'
    assert table.loc['efficientvit_m5_in1k',
                     'imagenet-1k/top_1_accuracy'] == 77.1
