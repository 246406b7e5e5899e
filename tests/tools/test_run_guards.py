"""tools/train.py and tools/test.py as an adversarial user meets them:
every fixable problem is a few lines without traceback (exit 1), a run
survives bad images and says what it dropped, --resume finds a good
checkpoint, Ctrl-C says how to go on."""
import json
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import torch
from test_det_e2e import tiny_config

from efficientvit_mm.checkpoint.io import TEMP_PREFIX
from efficientvit_mm.runtime.config import load_config
from efficientvit_mm.runtime.lock import LOCK_NAME, acquire_work_dir
from helpers import ROOT, load_tool

pytestmark = pytest.mark.slow


def tiny_state(config):
    from efficientvit_mm.apis import build_model
    return build_model(load_config(config)).state_dict()


def problem_args(case, tmp_path, config):
    """(tool, arguments, what the message must say) of each case."""
    work = str(tmp_path / 'work')
    if case == 'busy':
        acquire_work_dir(work, command='tools/train.py first.py')
        return 'train', [], 'is in use by another run'
    if case == 'corrupt':
        path = tmp_path / 'random.pth'
        path.write_bytes(os.urandom(3000))
        return 'train', ['--cfg-options', f'load_from={path}'], \
            'not a readable checkpoint (3000 bytes'
    if case == 'url':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        return 'train', [
            '--cfg-options', f'load_from=http://127.0.0.1:'
            f'{port}/m.pth'
        ], 'cannot download'
    if case == 'weights-only':
        path = tmp_path / 'weights.pth'
        torch.save({'state_dict': tiny_state(config)}, path)
        return 'train', ['--resume', str(path)], \
            'use load_from instead of --resume'
    if case == 'misfit':
        state = tiny_state(config)
        for key in list(state)[-5:]:
            del state[key]
        path = tmp_path / 'five_missing.pth'
        torch.save({'state_dict': state}, path)
        return 'test', [str(path)], '5 missing'
    if case == 'missing-image':
        shutil.copytree(osp.dirname(config) + '/coco', tmp_path / 'gone')
        name = sorted(os.listdir(tmp_path / 'gone' / 'train'))[0]
        os.remove(tmp_path / 'gone' / 'train' / name)
        return 'train', ['--cfg-options', f'data_root={tmp_path}/gone/'], \
            f'1 of the files it lists are missing: {tmp_path}/gone/train/' \
            f'{name}'
    options = dict(
        arch=('model.backbone.arch=m9', "unknown EfficientViT arch 'm9'"),
        typo=('model.backbon.arch=m0', "did you mean 'backbone'?"),
        neck=('model.neck.in_channels=[8,16,32]',
              'model.neck.in_channels is [8, 16, 32]'),
        nothing=('train_cfg.max_epochs=1', 'nothing to resume'))
    option, expected = options[case]
    extra = ['--resume'] if case == 'nothing' else []
    return 'train', extra + ['--cfg-options', option], expected


@pytest.fixture
def tiny(tmp_path, tiny_coco):
    shutil.copytree(tiny_coco, tmp_path / 'coco')
    return tiny_config(tmp_path, str(tmp_path / 'coco'))


@pytest.mark.parametrize('case', [
    'arch', 'typo', 'neck', 'nothing', 'busy', 'corrupt', 'url',
    'weights-only', 'misfit', 'missing-image'
])
def test_user_errors_take_a_few_lines(case, tmp_path, tiny, capsys):
    tool, args, expected = problem_args(case, tmp_path, tiny)
    argv = [tiny] + args[:1] if tool == 'test' else [tiny]
    argv += (args[1:] if tool == 'test' else args)
    argv += ['--work-dir', str(tmp_path / 'work')]
    assert load_tool(tool).main(argv) == 1
    err = capsys.readouterr().err
    message = err[err.index(f'tools/{tool}.py: error:'):]
    assert 'Traceback' not in err
    assert len(message.splitlines()) <= 5, message
    assert expected in message, message


def test_a_run_survives_bad_data_and_resumes(tmp_path, tiny):
    coco = tmp_path / 'coco'
    names = sorted(os.listdir(coco / 'train'))
    broken = coco / 'train' / names[1]
    broken.write_bytes(broken.read_bytes()[:300])  # a truncated JPEG
    ann_path = coco / 'annotations' / 'instances_train.json'
    ann = json.loads(ann_path.read_text())
    ann['annotations'][0]['bbox'][2] = -4.  # negative width
    ann['annotations'][1]['category_id'] = 77  # unknown category
    ann_path.write_text(json.dumps(ann))
    work = tmp_path / 'work'
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), tiny, '--work-dir',
        str(work), '--cfg-options', 'bad_image_limit=0.2'
    ]
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2')
    first = subprocess.run(cmd + ['trian_cfg.max_epochs=3'],
                           capture_output=True, text=True, env=env, cwd=ROOT,
                           timeout=600)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-3000:]
    assert "config key 'trian_cfg' means nothing to mmengine" in log
    assert 'AtomicCheckpointHook' in log and 'DivergenceHook' in log
    assert '2 boxes left out (1 non-positive size, 1 unknown category id ' \
        '[77])' in log
    assert f'skipping {broken}: AssertionError: failed to load image' in log
    names = sorted(os.listdir(work))
    assert 'epoch_1.pth' in names and (work / LOCK_NAME).stat().st_size == 0
    assert not [n for n in names if n.startswith(TEMP_PREFIX)]

    # --resume without last_checkpoint: the newest checkpoint that loads;
    # Ctrl-C in the resumed run says how to continue
    (work / 'last_checkpoint').unlink()
    # (a run started in the background inherits an ignored SIGINT, and
    # Python keeps it so: this one gets the default, as from a terminal)
    second = subprocess.Popen(
        cmd + ['train_cfg.max_epochs=3', '--resume'], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in second.stdout:
        seen.append(line)
        if 'Epoch(train) [2][' in line:
            second.send_signal(signal.SIGINT)
            break
    out, err = second.communicate(timeout=300)
    log = ''.join(seen) + out
    assert 'resuming from the newest checkpoint that loads: ' \
        f'{work}/epoch_1.pth' in log
    assert second.returncode == 130, err[-3000:]
    message = err[err.index('tools/train.py: interrupted'):]
    assert 'Traceback' not in err and len(message.splitlines()) <= 5
    assert f'--work-dir {work} --resume' in message


def test_every_config_stops_on_divergence():
    configs = [
        'retinanet_efficientvit_m4_coco.py',
        'mask_rcnn_efficientvit_m4_coco.py', 'fpn_efficientvit_m4_ade20k.py',
        'upernet_efficientvit_m4_ade20k.py', 'efficientvit_m0_in1k.py',
        'demo/retinanet_efficientvit_m0_shapes.py',
        'demo/fpn_efficientvit_m0_shapes_seg.py',
        'demo/efficientvit_m0_shapes_cls.py'
    ]
    for name in configs:
        cfg = load_config(osp.join(ROOT, 'configs', name))
        hook = cfg.default_hooks.divergence
        assert hook.type == 'DivergenceHook' and hook.get('enabled', True)
