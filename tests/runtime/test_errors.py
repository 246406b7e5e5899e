"""The one error engine (runtime/errors): the toolboxes' errors that mean a
fixable problem become a few lines naming problem and fix; bugs keep their
traceback; --debug / EVIT_DEBUG=1 shows it anyway."""
import errno
import os.path as osp

import pytest
from mmengine.config import Config

from efficientvit_mm.errors import DataFaultError, PreflightError
from efficientvit_mm.runtime.config import load_config, misspelt_keys
from efficientvit_mm.runtime.errors import (as_user_error, build_error,
                                            message_of, report)
from efficientvit_mm.runtime.launch import resume_hint
from efficientvit_mm.runtime.spelling import edit_distance
from helpers import ROOT, load_tool


def build_model(cfg):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    try:
        MODELS.build(cfg)
    except Exception as err:
        return err
    pytest.fail('built')


def test_a_misspelt_argument_names_the_one_meant():
    err = build_model(dict(type='RetinaNet', backbon=dict(type='ResNet')))
    user = build_error(err)
    assert "gives RetinaNet an argument 'backbon' it does not " \
        "take; did you mean 'backbone'?" in str(user)


def test_an_unregistered_type_names_the_one_meant():
    user = build_error(build_model(dict(type='RetinaNett')))
    assert "type='RetinaNett' is not a registered model name; did you " \
        "mean type='RetinaNet'?" in str(user)


def test_registry_prefixes_and_worker_tracebacks_are_stripped():
    wrapped = ValueError('class `RetinaNet` in mmdet/models/retinanet.py: '
                         'class `EfficientViT` in efficientvit_mm/models/'
                         'backbones/efficientvit.py: unknown arch')
    assert message_of(wrapped) == 'EfficientViT: unknown arch'
    assert str(build_error(wrapped)) == 'EfficientViT: unknown arch'
    worker = DataFaultError(
        'Caught DataFaultError in DataLoader worker process 0.\nOriginal '
        'Traceback (most recent call last):\n  File "x.py", line 1\n'
        'efficientvit_mm.errors.DataFaultError: 12 images are broken')
    assert message_of(worker) == '12 images are broken'
    assert build_error(TypeError('a bug')) is None


def test_report_is_short_and_keeps_bugs(capsys, monkeypatch):
    monkeypatch.delenv('EVIT_DEBUG', raising=False)
    wall = PreflightError('\n'.join(f'line {i}' for i in range(30)))
    assert report('tool', wall) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 20 and 'Traceback' not in err
    assert err.startswith('tool: error: line 0') and '(11 more lines)' in err
    with pytest.raises(ZeroDivisionError):  # a bug: its traceback counts
        report('tool', ZeroDivisionError('x'))
    monkeypatch.setenv('EVIT_DEBUG', '1')
    try:
        raise PreflightError('no data')
    except PreflightError as caught:
        assert report('tool', caught) == 1
    err = capsys.readouterr().err
    assert 'Traceback' in err and err.endswith('tool: error: no data\n')


def test_ctrl_c_says_how_to_resume(tmp_path, capsys):
    cfg = Config(
        dict(work_dir=str(tmp_path)), cfg_text='x = 1', filename='cfg.py')
    hint = lambda: resume_hint('tools/train.py', cfg)  # noqa: E731
    assert report('tools/train.py', KeyboardInterrupt(), hint) == 130
    assert 'interrupted (Ctrl-C). No checkpoint was saved yet; start ' \
        f'again with: python tools/train.py cfg.py --work-dir {tmp_path}' \
        in capsys.readouterr().err
    (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    report('tools/train.py', KeyboardInterrupt(), hint)
    assert f'--work-dir {tmp_path} --resume' in capsys.readouterr().err


def test_configs_that_are_not_python_and_bad_options(tmp_path, capsys):
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(\n  type="RetinaNet",\n  oops\n')
    with pytest.raises(PreflightError,
                       match=f'config {bad} is not valid Python '
                       r'\(line 1:'):
        load_config(str(bad))
    orphan = tmp_path / 'orphan.py'
    orphan.write_text("_base_ = ['./retinanet_base.py']\n")
    with pytest.raises(
            PreflightError, match=f'config {orphan} inherits '
            f'{tmp_path}/retinanet_base.py, which does not exist'):
        load_config(str(orphan))
    train = load_tool('train')
    for option in ('max_epochs', 'model.neck.in_channels=[1,2'):
        with pytest.raises(SystemExit) as code:
            train.parse_args([str(bad), '--cfg-options', option])
        assert code.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 2 and '--cfg-options' in err


def test_top_level_typos_are_caught():
    assert edit_distance('trian_cfg', 'train_cfg') == 1
    cfg = load_config(
        osp.join(ROOT, 'configs', 'demo',
                 'retinanet_efficientvit_m0_shapes.py'),
        {'trian_cfg.max_epochs': 1})
    assert misspelt_keys(cfg) == [('trian_cfg', 'train_cfg')]


def test_full_disk_and_quota_name_the_file_and_the_fix():
    quota = as_user_error(OSError(errno.EDQUOT, 'Disk quota exceeded', 'w/a'))
    assert str(quota) == ('could not write w/a: disk quota exceeded: free '
                          'some space or choose another --work-dir')
    full = as_user_error(OSError(errno.ENOSPC, 'No space left on device'))
    assert str(full).startswith('no space left on the device: free some')
    io_error = OSError(errno.EIO, 'I/O error')
    assert as_user_error(io_error) is None  # no fix to name: a traceback
