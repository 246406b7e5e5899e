"""Runtime breakdown by block role (the paper's Fig. 2) on every family."""
import pytest
import torch
import torch.nn as nn

from efficientvit_mm.analysis import (classify, module_roles,
                                      runtime_breakdown, summarise)
from efficientvit_mm.analysis.runtime_breakdown import (enclosing_role,
                                                        event_us, parse_roles,
                                                        profiler_activities)
from efficientvit_mm.errors import UserError
from helpers import load_tool, tool_exit_status
from helpers.tiny_models import build_tiny, write_tiny_config
from helpers.tool_outputs import png_size, read_csv

# the role names the CSV and the plot use
ATTENTION = 'attention'
CONV_BLOCK = 'conv block'
DOWNSAMPLE = 'downsampling'
FFN = 'FFN/MLP'
NORM = 'normalisation'
OTHER = 'other'
PATCH = 'patch embed/merging'
STEM = 'stem'
TOKEN_MIXING = 'token mixing (dw conv)'

# the roles each family's blocks must be found in
EXPECTED = {
    'efficientvit': {STEM, PATCH, ATTENTION, TOKEN_MIXING, FFN, NORM},
    'swin': {PATCH, ATTENTION, FFN, NORM},
    'vit': {PATCH, ATTENTION, FFN, NORM},
    'resnet': {STEM, CONV_BLOCK, DOWNSAMPLE, NORM},
    'convnext': {STEM, DOWNSAMPLE, TOKEN_MIXING, FFN, NORM},
}


def test_operators_are_classified_compute_or_memory_bound():
    assert classify('aten::mkldnn_convolution') == ('convolution', 'compute')
    assert classify('aten::cudnn_convolution') == ('convolution', 'compute')
    assert classify('aten::bmm')[1] == 'compute'
    assert classify('aten::addmm')[1] == 'compute'
    assert classify('aten::baddbmm')[1] == 'compute'
    assert classify(
        'aten::_scaled_dot_product_flash_attention_for_cpu')[1] == 'compute'
    assert classify('aten::add') == ('element-wise', 'memory')
    assert classify('aten::_softmax') == ('softmax', 'memory')
    assert classify('aten::native_batch_norm') == ('normalisation', 'memory')
    assert classify('aten::native_layer_norm') == ('normalisation', 'memory')
    assert classify('aten::gelu') == ('activation', 'memory')
    assert classify('aten::permute') == ('reshape', 'memory')
    assert classify('aten::copy_') == ('copy/gather', 'memory')
    assert classify('aten::roll') == ('copy/gather', 'memory')
    assert classify('aten::max_pool2d_with_indices') == ('pooling', 'memory')
    # the transpose 'aten::t' alone is a reshape, not every name ending in t
    assert classify('aten::t') == ('reshape', 'memory')
    assert classify('aten::sqrt') == ('element-wise', 'memory')
    assert classify('aten::rsqrt') == ('element-wise', 'memory')
    assert classify('aten::expand') == ('reshape', 'memory')
    assert classify('aten::repeat') == ('copy/gather', 'memory')
    assert classify('aten::gt')[0] != 'reshape'


def test_roles_of_known_modules():
    """Modules are found by class, by place and by shape."""
    model = build_tiny('resnet')
    roles = module_roles(model)
    assert roles['backbone.conv1'] == STEM
    assert roles['backbone.maxpool'] == STEM
    assert roles['backbone.bn1'] == NORM  # a norm is a norm, even in a stem
    assert roles['backbone.layer1.0'] == CONV_BLOCK
    assert roles['backbone.layer2.0.downsample'] == DOWNSAMPLE
    evit = module_roles(build_tiny('efficientvit'))
    # the depthwise conv of the FFN sandwich mixes tokens; the Q conv inside
    # the attention and the one inside PatchMerging stay in their layer
    assert evit['backbone.stages.0.blocks.0.pre.dw'] == TOKEN_MIXING
    assert 'backbone.stages.0.blocks.0.attn.dws.0' not in evit
    assert 'backbone.stages.1.downsample.merge.conv2' not in evit
    assert evit['backbone.stages.1.downsample.pre.dw'] == TOKEN_MIXING
    assert evit['backbone.stages.1.downsample.merge'] == PATCH
    swin = module_roles(build_tiny('swin'))
    assert swin['backbone.stages.0.blocks.0.attn'] == ATTENTION
    assert swin['backbone.stages.0.downsample'] == PATCH


def test_extra_roles_name_unknown_classes():

    class TokenMixer(nn.Module):

        def forward(self, x):
            return x.flip(-1) * 2

    model = nn.Sequential(nn.Conv2d(3, 4, 1), TokenMixer())
    assert '1' not in module_roles(model)
    assert module_roles(model, {'TokenMixer': ATTENTION})['1'] == ATTENTION
    rows = runtime_breakdown(model, torch.randn(1, 3, 8, 8), runs=1,
                             extra_roles={'TokenMixer': ATTENTION})
    assert {r['role'] for r in rows} == {ATTENTION, OTHER}
    assert parse_roles(['A=attention', 'B=FFN/MLP']) == {
        'A': ATTENTION,
        'B': FFN
    }
    with pytest.raises(UserError, match='ClassName=role'):
        parse_roles(['attention'])


@pytest.mark.parametrize('family', sorted(EXPECTED))
def test_every_family_charges_time_to_its_roles(family):
    rows = runtime_breakdown(
        build_tiny(family), torch.randn(2, 3, 32, 32), warmup=1, runs=1)
    summary = summarise(rows)
    assert EXPECTED[family] <= set(summary), sorted(summary)
    for role in EXPECTED[family] - {NORM}:
        assert sum(summary[role].values()) > 0, role
    # every norm op runs inside a norm layer
    assert all(r['role'] == NORM for r in rows
               if r['group'] == 'normalisation')
    assert summary[NORM]['compute'] == 0


def test_attention_does_memory_bound_work():
    rows = runtime_breakdown(
        build_tiny('efficientvit'), torch.randn(2, 3, 64, 64), runs=1)
    groups = {r['group'] for r in rows if r['role'] == ATTENTION}
    assert {'softmax', 'reshape', 'matmul', 'convolution'} <= groups


def test_cuda_kernels_are_profiled_only_on_cuda():
    from torch.profiler import ProfilerActivity
    assert profiler_activities('cpu') == [ProfilerActivity.CPU]
    assert profiler_activities(torch.device(
        'cuda', 0)) == [ProfilerActivity.CPU, ProfilerActivity.CUDA]

    class Event:
        self_cpu_time_total = 5.
        self_device_time_total = 2.
        name = 'aten::add'

        def __init__(self, parent=None):
            self.cpu_parent = parent

    assert event_us(Event(), cuda=True) == 2.
    assert event_us(Event(), cuda=False) == 5.
    role = Event()
    role.name = f'role::{FFN}'
    assert enclosing_role(Event(Event(role))) == FFN
    assert enclosing_role(Event()) == OTHER


def test_device_cuda_is_checked_and_passed_on(monkeypatch):
    tool = load_tool('analysis/runtime_breakdown')
    config = 'configs/efficientvit_m0_in1k.py'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    args = tool.parse_args([config, config, '--device', 'cuda'])
    assert args.device == 'cuda' and len(args.configs) == 2
    with pytest.raises(SystemExit):
        tool.parse_args([config, config, '--labels', 'one'])


def run_breakdown(argv):
    return tool_exit_status('analysis/runtime_breakdown', argv)


def test_tool_profiles_several_configs_side_by_side(tmp_path, capsys):
    out = tmp_path / 'rb'
    vit = write_tiny_config(tmp_path, 'vit')
    assert run_breakdown([
        'configs/efficientvit_m0_in1k.py', vit, '--labels', 'M0', 'ViT',
        '--batch-size', '1', '--shape', '64', '--runs', '1', '--warmup', '0',
        '--out-dir',
        str(out)
    ]) == 0
    stdout = capsys.readouterr().out
    rows = read_csv(out / 'runtime_breakdown.csv')
    assert {r['model'] for r in rows} == {'M0', 'ViT'}
    vit_roles = {r['role'] for r in rows if r['model'] == 'ViT'}
    assert {ATTENTION, FFN, NORM, PATCH} <= vit_roles
    assert all(float(r['ms']) > 0 for r in rows)
    assert png_size(out / 'runtime_breakdown.png')[0] > 800
    assert '[2/2] profiling ViT' in stdout
    assert 'ViT: ' in stdout and 'memory-bound' in stdout


def test_tool_deploy_folds_every_batchnorm(tmp_path):
    out = tmp_path / 'rb'
    assert run_breakdown([
        'configs/efficientvit_m0_in1k.py', '--batch-size', '1', '--shape',
        '64', '--runs', '1', '--deploy', '--out-dir',
        str(out)
    ]) == 0
    rows = read_csv(out / 'runtime_breakdown.csv')
    assert {STEM, ATTENTION, FFN, TOKEN_MIXING} <= {r['role'] for r in rows}
    assert not any(r['group'] == 'normalisation' for r in rows)


def test_tool_deploy_of_a_model_without_batchnorm_is_refused(tmp_path, capsys):
    assert run_breakdown(
        [write_tiny_config(tmp_path, 'vit'), '--shape', '32', '--deploy']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'has no switch_to_deploy()' in err[0]
