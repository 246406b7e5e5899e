"""Params and FLOPs of the classifiers match the paper's table."""
import os

import pytest

from efficientvit_mm.analysis import count_complexity
from efficientvit_mm.runtime import load_config
from helpers import ROOT

# EfficientViT paper, Table 1: params (M) and FLOPs (M multiply-adds) at 224.
PAPER = {
    'm0': (2.3, 79),
    'm1': (3.0, 167),
    'm2': (4.2, 201),
    'm3': (6.9, 263),
    'm4': (8.8, 299),
    'm5': (12.4, 522),
}


@pytest.mark.parametrize('arch', sorted(PAPER))
def test_classifier_params_and_flops_match_the_paper(arch):
    cfg = load_config(
        os.path.join(ROOT, 'configs', f'efficientvit_{arch}_in1k.py'))
    result = count_complexity(cfg)
    params, flops = PAPER[arch]
    assert result['shape'] == (224, 224)
    # the paper rounds down (the official code counts 2.35M for M0 ...)
    assert abs(result['params'] / 1e6 - params) <= 0.1
    assert abs(result['flops'] / 1e6 - flops) / flops <= 0.03


def test_get_flops_tool_prints_the_figures(capsys):
    import runpy
    import sys
    argv = sys.argv
    sys.argv = [
        'get_flops.py',
        os.path.join(ROOT, 'configs', 'efficientvit_m0_in1k.py'), '--shape',
        '256'
    ]
    try:
        with pytest.raises(SystemExit) as exit_:  # a command's exit status
            runpy.run_path(
                os.path.join(ROOT, 'tools', 'get_flops.py'),
                run_name='__main__')
    finally:
        sys.argv = argv
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert 'input:   1 x 3 x 256 x 256' in out
    assert 'params:  2.35 M' in out
    assert 'M multiply-adds' in out
