"""The ImageNet configs on a machine without ImageNet, and bad checkpoints:
short messages, non-zero exits, no traceback wall. The tools run in this
process (their ``main`` returns the exit status ``python tools/...``
exits with); tests/tools/test_tools_errors.py runs one in a fresh
process."""
import os

import pytest

from helpers import ROOT, load_tool

CONFIG = os.path.join('configs', 'efficientvit_m4_in1k.py')


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the README's commands run from the checkout


def test_training_without_imagenet_says_where_and_what_to_do(
        tmp_path, in_root, capsys):
    status = load_tool('train').main([
        CONFIG, '--work-dir',
        str(tmp_path), '--cfg-options', f'data_root={tmp_path}/imagenet'
    ])
    assert status == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert f'{tmp_path}/imagenet' in err  # where it is expected
    assert '--cfg-options data_root=' in err  # how to point elsewhere
    assert 'tools/shapes_demo.py cls' in err  # the demo that needs none


def test_default_data_root_is_data_imagenet(in_root, capsys):
    assert load_tool('train').main([CONFIG]) == 1
    assert 'data/imagenet' in capsys.readouterr().err


def test_testing_with_a_missing_checkpoint_names_it(tmp_path, in_root, capsys):
    missing = str(tmp_path / 'efficientvit_m4_converted.pth')
    status = load_tool('test').main([
        os.path.join('configs', 'demo', 'efficientvit_m0_shapes_cls.py'),
        missing, '--work-dir',
        str(tmp_path)
    ])
    assert status == 1
    err = capsys.readouterr().err
    assert missing in err and 'Traceback' not in err
