"""Classification end to end: tools/train.py then tools/test.py on a tiny
generated folder dataset (mmpretrain CustomDataset layout)."""
import glob
import os

import pytest

from efficientvit_mm.datasets.shapes import export_crops
from helpers import ROOT, run_tool

pytestmark = pytest.mark.slow

TINY = '''
_base_ = [{base!r}]
data_root = {root!r}
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=2,
                                     save_best=None))
'''


@pytest.fixture(scope='module')
def tiny_crops(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes_cls'))
    counts = export_crops(root, dict(train=6, val=3), seed=1, crop_size=32,
                          image_size=96)
    assert counts['train'] > 8 and counts['val'] > 2
    return root


def test_train_then_test_gives_accuracy(tiny_crops, tmp_path):
    config = tmp_path / 'tiny_cls.py'
    config.write_text(
        TINY.format(
            base=os.path.join(ROOT, 'configs', 'demo',
                              'efficientvit_m0_shapes_cls.py'),
            root=tiny_crops))
    work_dir = str(tmp_path / 'work')
    train = run_tool(['tools/train.py', str(config), '--work-dir', work_dir])
    assert 'Epoch(train) [2]' in train.stdout + train.stderr
    ckpt = os.path.join(work_dir, 'epoch_2.pth')
    assert os.path.isfile(ckpt)
    out = str(tmp_path / 'preds.pkl')
    test = run_tool([
        'tools/test.py',
        str(config), ckpt, '--work-dir', work_dir, '--out', out
    ])
    log = test.stdout + test.stderr
    assert 'accuracy/top1:' in log
    top1 = float(log.split('accuracy/top1:')[1].split()[0])
    assert 0.0 <= top1 <= 100.0
    assert os.path.isfile(out)
    assert glob.glob(os.path.join(work_dir, '*', '*.log'))
