"""Bad input to the analysis tools ends in one line on stderr (through
efficientvit_mm.runtime.errors) and exit status 1, before any long work."""
import pytest
import torch

from helpers import tool_exit_status
from helpers.tiny_models import write_tiny_config

M0 = 'configs/efficientvit_m0_in1k.py'
DATA = 'configs/demo/efficientvit_m0_shapes_cls.py'
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(),
                            reason='a CUDA device is visible')

CASES = [
    ('runtime_breakdown', [M0, 'nope.py'], "config file 'nope.py' does not"),
    pytest.param('runtime_breakdown', [M0, '--device', 'cuda'],
                 'torch sees no CUDA device', marks=NO_GPU),
    pytest.param('mhsa_proportion', [M0, '--device', 'cuda'],
                 'torch sees no CUDA device', marks=NO_GPU),
    ('mhsa_proportion', ['nope.py'], "config file 'nope.py' does not"),
    ('head_similarity', [M0, 'missing.pth'], 'checkpoint file not found'),
    ('head_similarity',
     ['RESNET', 'none', '--num-images', '1', '--shape',
      '32'], 'ResNet has no attention layer'),
    ('head_similarity', [M0, 'none', '--images',
                         'BROKEN'], 'cannot read the image'),
    ('taylor_pruning',
     [M0, 'none', '--data-config', DATA, '--target-flops',
      '1.5'], 'fraction of the flops to keep, in (0, 1)'),
    ('taylor_pruning', [M0, 'missing.pth', '--data-config',
                        DATA], 'checkpoint file not found'),
    ('taylor_pruning', [M0, 'none', '--data-config',
                        'nope.py'], "config file 'nope.py' does not"),
    ('runtime_breakdown', ['RESNET', '--deploy', '--shape', '32'],
     'has no switch_to_deploy() (no BatchNorm to fold); profile it '
     'without --deploy'),
    ('runtime_breakdown', [
        'SWIN', '--cfg-options', 'model.backbone.pad_small_map=False',
        '--shape', '16', '--batch-size', '1', '--runs', '1', '--warmup', '0'
    ], "2x2 stage map is smaller than Swin's 4x4 window: pad it "
     '(--cfg-options model.backbone.pad_small_map=True)'),
]


@pytest.mark.parametrize('tool, argv, message', CASES)
def test_bad_input_is_one_line(tool, argv, message, tmp_path, capsys):
    broken = tmp_path / 'images'
    broken.mkdir()
    (broken / 'a.jpg').write_bytes(b'not a jpeg')
    named = dict(BROKEN=str(broken))
    argv = [
        write_tiny_config(tmp_path, a.lower())
        if a in ('RESNET', 'SWIN') else named.get(a, a) for a in argv
    ] + ['--out-dir', str(tmp_path / 'out')]
    prog = f'tools/analysis/{tool}.py'
    assert tool_exit_status(f'analysis/{tool}', argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f'{prog}: error: ')
    assert message in err[0]
    assert not (tmp_path / 'out').exists()  # failed before writing
