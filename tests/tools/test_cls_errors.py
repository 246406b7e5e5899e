"""The ImageNet configs on a machine without ImageNet, and bad checkpoints:
short messages, non-zero exits, no traceback wall."""
import os

from helpers import ROOT, run_tool

CONFIG = os.path.join('configs', 'efficientvit_m4_in1k.py')


def test_training_without_imagenet_says_where_and_what_to_do(tmp_path):
    proc = run_tool([
        'tools/train.py', CONFIG, '--work-dir',
        str(tmp_path), '--cfg-options', f'data_root={tmp_path}/imagenet'
    ], check=False)
    assert proc.returncode == 1
    err = proc.stderr
    assert 'Traceback' not in err
    assert f'{tmp_path}/imagenet' in err  # where it is expected
    assert '--cfg-options data_root=' in err  # how to point elsewhere
    assert 'tools/shapes_demo.py cls' in err  # the demo that needs none


def test_default_data_root_is_data_imagenet():
    proc = run_tool(['tools/train.py', CONFIG], check=False, cwd=ROOT)
    assert proc.returncode == 1
    assert 'data/imagenet' in proc.stderr


def test_testing_with_a_missing_checkpoint_names_it(tmp_path):
    missing = str(tmp_path / 'efficientvit_m4_converted.pth')
    proc = run_tool([
        'tools/test.py',
        os.path.join('configs', 'demo', 'efficientvit_m0_shapes_cls.py'),
        missing, '--work-dir',
        str(tmp_path)
    ], check=False)
    assert proc.returncode == 1
    assert missing in proc.stderr and 'Traceback' not in proc.stderr
