"""tools/benchmark.py and the modes it times: every mode computes what eager
computes (fp32, <= 1e-4), and the tool reports the figures it promises."""
import json
import os

import pytest
import torch

from efficientvit_mm.apis import TensorForward, build_model, data_samples
from efficientvit_mm.benchmarking import prepare
from efficientvit_mm.runtime import load_config
from efficientvit_mm.testing import randomise
from helpers import ROOT, load_tool, run_tool


def _classifier(arch='m0'):
    cfg = load_config(
        os.path.join(ROOT, 'configs', f'efficientvit_{arch}_in1k.py'))
    net = TensorForward(
        randomise(build_model(cfg)), data_samples('classification',
                                                  (224, 224)))
    return net.eval()


@pytest.mark.parametrize('mode,channels_last', [
    ('eager', True),
    ('deploy', False),
    ('deploy', True),
    ('compile', True),
])
def test_each_cpu_mode_matches_eager(mode, channels_last):
    net = _classifier()
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        expected = net(x)
        fn = prepare(net, mode, x, channels_last=channels_last)
        inp = x.contiguous(memory_format=torch.channels_last) \
            if channels_last else x
        got = fn(inp)
    assert expected.std() > 0.1  # real arithmetic, not a constant
    assert (got - expected).abs().max().item() <= 1e-4
    # prepare works on a copy: the model given stays as it was
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="mode must be one of .*'fast'"):
        prepare(_classifier(), 'fast', torch.randn(1, 3, 64, 64))


def test_tool_reports_figures_and_timm_ratio(tmp_path):
    pytest.importorskip('timm', reason='optional extra: timm')
    out = tmp_path / 'bench.json'
    proc = run_tool([
        'tools/benchmark.py', '--arch', 'm0', '--batch-size', '2', '--shape',
        '96', '--mode', 'eager', 'deploy', '--compare-timm', '--warmup', '1',
        '--repeats', '2', '--iters', '1', '--json',
        str(out)
    ], env=dict(KINETO_LOG_LEVEL=None))  # as from a shell that never set it
    # the CPU peak-memory reading (torch.profiler) prints no kineto lines
    for line in ('USDT', 'profiler_start', 'profiler_stop'):
        assert line not in proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert figures['arch'] == 'm0' and figures['batch'] == 2
    assert figures['shape'] == [96, 96] and figures['threads'] == 1
    assert set(figures['results']) == {'eager', 'deploy', 'timm eager'}
    for name, row in figures['results'].items():
        assert row['images_per_s'] > 0 and row['latency_ms'] > 0
        assert row['peak_mib'] > 0
        assert row['images_per_s'] == pytest.approx(2 /
                                                    (row['batch_ms'] / 1e3))
        assert name in proc.stdout
    assert figures['results']['timm eager']['vs_timm'] == 1.0
    assert 'vs timm' in proc.stdout


def test_tool_times_a_dense_config():
    proc = run_tool([
        'tools/benchmark.py',
        os.path.join('configs', 'retinanet_efficientvit_m0_coco.py'),
        '--batch-size', '1', '--shape', '160', '224', '--mode', 'deploy',
        '--warmup', '1', '--repeats', '1', '--iters', '1'
    ])
    assert '(detection, m0)' in proc.stdout
    assert '160x224' in proc.stdout


@pytest.mark.parametrize('args,message', [
    (['--arch', 'm0', '--mode', 'cudagraph'
      ], 'cudagraph mode needs --device cuda'),
    (['--mode', 'eager'], 'give a config or --arch'),
    (['--arch', 'm0', '--shape', '1', '2', '3'], '--shape takes H W'),
])
def test_bad_arguments_are_named(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool('benchmark').parse_args(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
