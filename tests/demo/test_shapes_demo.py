"""tools/shapes_demo.py: the detection and classification demos end to end,
cut to a couple of iterations on a few generated images (the segmentation
demo's run is in tests/test_seg_e2e.py), and the shared steps of
efficientvit_mm/demo/: the data stamp and the errors."""
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from efficientvit_mm.demo import DemoError, shapes_demo_main
from efficientvit_mm.demo.steps import STAMP, generate_data
from helpers import ROOT, run_tool

DET_CONFIG = osp.join(ROOT, 'configs', 'demo',
                      'retinanet_efficientvit_m0_shapes.py')


def run_demo(task, tmp_path, *options, num_vis=2):
    work, data = tmp_path / 'work', tmp_path / 'data'
    proc = run_tool([
        'tools/shapes_demo.py', task, '--work-dir',
        str(work), '--data-root',
        str(data), '--num-vis',
        str(num_vis), '--cfg-options', *options
    ])
    out = proc.stdout + proc.stderr
    summary = json.loads((work / 'demo_result.json').read_text())
    png = cv2.imread(str(work / 'predictions.png'))
    assert png is not None, out[-3000:]
    assert set(
        summary['seconds']) == {'data', 'train', 'eval', 'draw', 'total'}
    assert summary['task'] == task
    assert osp.isfile(summary['checkpoint'])
    assert summary['checkpoint'].startswith(str(work))
    assert osp.isfile(data / STAMP)
    assert re.search(
        r'\[demo\] wall time +\d+\.\d min \(data \d+s, '
        r'training \d+s, evaluation \d+s, drawing \d+s\)', out)
    return out, summary, png, work, data


@pytest.mark.slow
def test_det_demo_end_to_end(tmp_path):
    """`tools/shapes_demo.py det` with 4 train images, 2 iterations: COCO
    data, training through tools/train.py, COCO bbox mAP, predictions.png."""
    out, summary, png, work, data = run_demo(
        'det',
        tmp_path,
        'shapes_data.splits.train=4',
        'shapes_data.splits.val=2',
        'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=2',
        # keep the untrained model's low scores, so COCO has boxes to score
        'model.test_cfg.score_thr=0.0')
    coco = json.loads(
        (data / 'annotations' / 'instances_val.json').read_text())
    assert len(coco['images']) == 2 and len(os.listdir(data / 'train')) == 4
    assert 'Epoch(train) [1][2/2]' in out  # progress of the training
    assert osp.isfile(work / 'train_stdout.log')
    found = re.search(
        r'\[demo\] COCO bbox mAP +(\d\.\d{3}) +\(AP50 '
        r'(\d\.\d{3}), AP75 (\d\.\d{3})\) on 2 held-out', out)
    assert found, out[-3000:]
    assert summary['bbox_mAP'] == pytest.approx(
        float(found.group(1)), abs=5e-4)
    assert summary['bbox_mAP_50'] == pytest.approx(
        float(found.group(2)), abs=5e-4)
    assert 0. <= summary['bbox_mAP'] <= summary['bbox_mAP_50'] <= 1.
    assert summary['num_val'] == 2
    # two 192x192 val images side by side, drawn (not blank)
    assert png.shape == (192, 2 * 192, 3)
    assert png.std() > 10


@pytest.mark.slow
def test_cls_demo_end_to_end(tmp_path):
    """`tools/shapes_demo.py cls` with 8 train scenes, one epoch: crops,
    training through tools/train.py, top-1, the PNG grid of val crops."""
    out, summary, png, work, data = run_demo(
        'cls', tmp_path, 'shapes_data.splits.train=8',
        'shapes_data.splits.val=3', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'train_dataloader.batch_size=8', num_vis=6)
    val = [f for _, _, files in os.walk(data / 'val') for f in files]
    assert sorted(os.listdir(
        data / 'val')) == ['circle', 'square', 'star', 'triangle']
    assert summary['num_val'] == len(val) >= 6
    assert 'Epoch(train) [1]' in out and 'accuracy/top1' in out
    found = re.search(
        r'\[demo\] top-1 accuracy +(\d+\.\d\d) % +on (\d+) '
        r'held-out val crops', out)
    assert found, out[-3000:]
    assert summary['top1'] == pytest.approx(float(found.group(1)), abs=0.01)
    assert int(found.group(2)) == len(val)
    assert 0. <= summary['top1'] <= 100.
    # 6 crops at 2x (128 px + border) in one row, each framed green (right)
    # or red (wrong), as many green as the summary line says
    right = int(re.search(r'\((\d+)/6 drawn crops right\)', out).group(1))
    assert png.shape[0] > 128 and png.shape[1] > 6 * 128
    row = png[png.shape[0] // 2]  # BGR across the middle of the tiles
    green = np.all(row == (0, 150, 0), axis=1)
    red = np.all(row == (0, 0, 210), axis=1)
    # a 4-pixel frame on each side of each tile
    assert green.sum() == 8 * right and red.sum() == 8 * (6 - right)


def _crop_files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, files in os.walk(root)
        for f in files if f.endswith('.png'))


def test_data_are_reused_only_with_the_same_settings(tmp_path, capsys):
    root = str(tmp_path / 'crops')
    spec = dict(
        splits=dict(train=3, val=1), seed=0, crop_size=16, image_size=48,
        num_objects=(1, 3))
    assert generate_data('export_crops', spec, root, force=False)
    first = _crop_files(root)
    with open(osp.join(root, STAMP)) as f:
        assert json.load(f)['num_objects'] == [1, 3]
    mtimes = {p: os.stat(osp.join(root, p)).st_mtime_ns for p in first}
    capsys.readouterr()

    assert not generate_data('export_crops', spec, root, force=False)
    assert '(same settings), skipping generation' in capsys.readouterr().out
    assert {p: os.stat(osp.join(root, p)).st_mtime_ns for p in first} == mtimes

    # other settings: written afresh, nothing left of the 3-scene set
    fewer = dict(spec, splits=dict(train=1, val=1))
    assert generate_data('export_crops', fewer, root, force=False)
    from efficientvit_mm.datasets import export_crops
    counts = export_crops(
        str(tmp_path / 'ref'), dict(train=1, val=1), seed=0, crop_size=16,
        image_size=48, num_objects=(1, 3))
    assert len(_crop_files(osp.join(root, 'train'))) == counts['train']
    assert _crop_files(root) == _crop_files(str(tmp_path / 'ref'))
    assert not osp.exists(root + '.partial')

    # --regenerate writes the same settings again
    assert generate_data('export_crops', fewer, root, force=True)


def test_a_folder_the_demo_did_not_write_is_kept(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'notes.txt').write_text('keep me')
    spec = dict(splits=dict(train=1), seed=0, crop_size=16, image_size=48)
    with pytest.raises(DemoError, match='--regenerate'):
        generate_data('export_crops', spec, str(root), force=False)
    assert (root / 'notes.txt').read_text() == 'keep me'
    assert generate_data('export_crops', spec, str(root), force=True)
    assert not (root / 'notes.txt').exists()


def test_data_root_never_replaces_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'keep.txt').write_text('keep me')
    spec = dict(splits=dict(train=1), seed=0, crop_size=16, image_size=48)
    for root in ('.', str(tmp_path.parent), ROOT):
        with pytest.raises(DemoError, match='choose a folder of its own'):
            generate_data('export_crops', spec, root, force=True)
    assert (tmp_path / 'keep.txt').read_text() == 'keep me'


def test_config_errors_are_one_line(tmp_path, capsys):
    assert shapes_demo_main(
        ['cls', '--config', DET_CONFIG, '--work-dir',
         str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('tools/shapes_demo.py: error: ')
    assert 'mmdet config' in err and 'needs a mmpretrain config' in err

    in1k = osp.join(ROOT, 'configs', 'efficientvit_m0_in1k.py')
    assert shapes_demo_main(['cls', '--config', in1k]) == 1
    assert 'has no shapes_data settings' in capsys.readouterr().err

    assert shapes_demo_main(['seg', '--config', 'nowhere.py']) == 1
    assert "'nowhere.py' does not exist" in capsys.readouterr().err

    for bad in (['--num-vis', '0'], ['--threads', '0'], ['pose']):
        with pytest.raises(SystemExit) as exit_:
            shapes_demo_main(bad)
        assert exit_.value.code == 2
    assert not os.listdir(tmp_path)  # nothing was written


def test_every_demo_config_has_its_data_settings():
    from efficientvit_mm.demo import SHAPES_DEMOS
    from efficientvit_mm.runtime import load_config
    for task, demo in SHAPES_DEMOS.items():
        cfg = load_config(osp.join(ROOT, demo.config))
        assert cfg.default_scope == demo.scope, task
        assert [h.type for h in cfg.custom_hooks] == ['AdaptiveThreadsHook']
        spec = cfg.shapes_data
        assert spec.seed == 0 and len(spec.splits) == 2, task
    cls = load_config(osp.join(ROOT, SHAPES_DEMOS['cls'].config))
    assert dict(cls.shapes_data.splits) == dict(train=600, val=100)
    assert cls.shapes_data.crop_size == 64
    assert cls.train_dataloader.dataset.data_prefix == 'train'


def test_only_load_on_our_own_cores_counts(tmp_path, monkeypatch):
    """A process pinned to some cores is not slowed by load on the others:
    only the /proc/stat lines of its own cores count."""
    from efficientvit_mm.engine import cpu_threads

    def stat(cpu1_busy):  # cpu0 idle, cpu1 busy for cpu1_busy more ticks
        path = tmp_path / f'stat{cpu1_busy}'
        idle0 = 500 + cpu1_busy
        path.write_text(f'cpu  {cpu1_busy} 0 0 {idle0 + 500} 0 0 0 0 0 0\n'
                        f'cpu0 0 0 0 {idle0} 0 0 0 0 0 0\n'
                        f'cpu1 {cpu1_busy} 0 0 500 0 0 0 0 0 0\n'
                        'intr 1 2 3\n')
        return str(path)

    ticks = cpu_threads._TICKS
    assert cpu_threads._cores_busy({0}, stat(300)) == (0., 800 / ticks)
    assert cpu_threads._cores_busy({1},
                                   stat(300)) == (300 / ticks, 800 / ticks)
    assert cpu_threads._cores_busy(None, stat(300))[0] == 300 / ticks
    snapshots = iter([stat(0), stat(400)])  # core 1 busy in between
    monkeypatch.setattr(cpu_threads, 'own_cpu', lambda: 0.)
    real = cpu_threads._cores_busy
    monkeypatch.setattr(cpu_threads, '_cores_busy',
                        lambda cpus: real(cpus, next(snapshots)))
    assert cpu_threads.OtherLoad({0}).sample() == 0.
    snapshots = iter([stat(0), stat(400)])
    assert cpu_threads.OtherLoad({1}).sample() == 1.


def test_threads_follow_the_cores_other_processes_leave(monkeypatch):
    """AdaptiveThreadsHook (in every demo config): one thread while another
    process takes one of two cores, both again once it is gone; the load
    of two spinning processes is measured from /proc."""
    import signal
    import subprocess
    import sys
    import time
    import types

    import torch

    from efficientvit_mm.engine.cpu_threads import (AdaptiveThreadsHook,
                                                    OtherLoad, own_cpu)
    spin = [sys.executable, '-c', 'while True: pass']
    # two spinners of another process tree (their parent exits at once)
    outside = [
        int(
            subprocess.run([
                sys.executable, '-c', 'import subprocess, sys; print('
                f'subprocess.Popen({spin!r}, stdout=subprocess.DEVNULL, '
                'stderr=subprocess.DEVNULL).pid)'
            ], capture_output=True, text=True, check=True).stdout)
        for _ in range(2)
    ]
    load = OtherLoad()
    try:
        time.sleep(1.5)
        assert load.sample() >= 1.5  # two cores' worth, less our share
    finally:
        for pid in outside:
            os.kill(pid, signal.SIGKILL)
    # our own children (dataloader workers) are not "other processes"
    # (polled: on two busy cores the spinners may need longer than 1.5 s
    # to burn one CPU-second between them)
    children = [subprocess.Popen(spin) for _ in range(2)]
    try:
        before, deadline = own_cpu(), time.monotonic() + 30
        while own_cpu() - before < 1.0 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert own_cpu() - before >= 1.0
    finally:
        for proc in children:
            proc.kill()
            proc.wait()

    others = iter([1.0, 1.0, 0.1])  # cores the others use, look by look
    monkeypatch.setattr(OtherLoad, 'sample', lambda self: next(others))
    monkeypatch.setattr(time, 'sleep', lambda s: None)
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1})
    threads, notes = [2], []
    monkeypatch.setattr(torch, 'set_num_threads', threads.append)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: threads[-1])
    runner = types.SimpleNamespace(
        logger=types.SimpleNamespace(info=notes.append))
    hook = AdaptiveThreadsHook(interval_s=0)
    hook.before_train(runner)  # 1 core busy: 1 thread
    hook.after_train_iter(runner, 0)  # still busy: no change
    hook.after_train_iter(runner, 1)  # free again: 2 threads
    assert threads == [2, 1, 2]
    assert notes == [
        'other processes keep 1.0 of 2 cores busy: training on 1 thread',
        'other processes keep 0.1 of 2 cores busy: training on 2 threads'
    ]
