"""The compatibility fixes of efficientvit_mm.compat, each tested for real."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

from helpers import ROOT


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.linear(inputs)  # default_collate already stacked
        if mode == 'loss':
            return dict(loss=((out.squeeze(1) - targets)**2).mean())
        return out


class _ToyData(torch.utils.data.Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(
            inputs=torch.randn(4, generator=g), targets=torch.tensor(float(i)))


def _runner(work_dir, max_iters, resume=False):
    return Runner(
        model=_ToyModel(), work_dir=work_dir, train_dataloader=dict(
            dataset=_ToyData(), sampler=dict(type='DefaultSampler',
                                             shuffle=True),
            collate_fn=dict(type='default_collate'), batch_size=2,
            num_workers=0), train_cfg=dict(by_epoch=False,
                                           max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                             begin=0, end=4), default_hooks=dict(
                                 checkpoint=dict(type='CheckpointHook',
                                                 interval=2, by_epoch=False),
                                 logger=dict(type='LoggerHook', interval=1)),
        resume=resume, default_scope='mmengine', randomness=dict(seed=0))


def test_resume_works_with_weights_only_loading(tmp_path):
    work_dir = str(tmp_path / 'run')
    _runner(work_dir, 4).train()
    ckpt = os.path.join(work_dir, 'iter_4.pth')
    assert os.path.isfile(ckpt)
    # mmengine stores HistoryBuffer objects (numpy inside) in every checkpoint
    state = torch.load(ckpt, weights_only=True)
    assert type(state['message_hub']['log_scalars']['train/loss']).__name__ \
        == 'HistoryBuffer'

    resumed = _runner(work_dir, 6, resume=True)
    resumed.train()
    assert resumed.iter == 6
    history = resumed.message_hub.get_scalar('train/loss')
    assert len(history.data[0]) == 6  # 4 restored + 2 new losses


def test_without_the_fix_torch_refuses_mmengine_checkpoints(tmp_path):
    """The fix is needed: a bare torch.load of the same file fails."""
    work_dir = str(tmp_path / 'run')
    _runner(work_dir, 2).train()
    code = ('import torch, sys; torch.load(sys.argv[1])')
    proc = subprocess.run(
        [sys.executable, '-c', code,
         os.path.join(work_dir, 'iter_2.pth')], capture_output=True, text=True,
        cwd=ROOT)
    assert proc.returncode != 0
    assert 'weights_only' in proc.stderr


class _RunsCode:

    def __reduce__(self):
        return (os.system, ('true', ))


def test_weights_only_still_refuses_code(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _RunsCode()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)


def test_getattr_stand_in_resolves_only_history_buffer_statistics(tmp_path):
    from mmengine.logging import HistoryBuffer

    class _Smuggle:

        def __reduce__(self):
            # HistoryBuffer is allowed; its __init__ leads to __globals__
            return (getattr, (HistoryBuffer, '__init__'))

    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': _Smuggle()}, path)
    with pytest.raises(pickle.UnpicklingError, match='refuses getattr'):
        torch.load(path)
    path = str(tmp_path / 'buffer.pth')
    buffer = HistoryBuffer([1.0, 2.0], [1, 1])
    torch.save({'buffer': buffer}, path)
    loaded = torch.load(path)['buffer']
    assert loaded.mean() == 1.5 and loaded.statistics('max') == 2.0


def test_toolbox_model_index_is_read_once_and_answers_the_same(monkeypatch):
    import mmengine.config.utils as config_utils
    from mmengine.fileio import load
    from mmengine.utils import get_installed_path

    from efficientvit_mm import compat
    from efficientvit_mm.runtime import load_config
    assert config_utils._get_cfg_metainfo is compat._model_config_entry
    mmdet = get_installed_path('mmdet')
    # mmengine's own reading of the index, for comparison
    index = load(f'{mmdet}/.mim/model-index.yml')
    first = load(f'{mmdet}/.mim/{index["Import"][0]}')['Models'][0]
    name = first['Config'].partition('/')[-1]
    assert compat._model_config_entry(mmdet, name) == first
    with pytest.raises(ValueError, match='not a model config of mmdet'):
        compat._model_config_entry(mmdet, '_base_/models/retinanet_r50_fpn')
    reads = []
    monkeypatch.setattr('mmengine.fileio.load',
                        lambda *a, **k: reads.append(a) or load(*a, **k))
    load_config(
        os.path.join(ROOT, 'configs', 'retinanet_efficientvit_m4_coco.py'))
    assert not any(str(a[0]).endswith('metafile.yml') for a in reads)
