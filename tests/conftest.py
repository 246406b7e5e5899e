import importlib.util
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data')
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import efficientvit_mm  # noqa: E402,F401  (registers modules, applies compat)


def load_reference(name: str) -> dict:
    """A reference file from tests/data with weights cast to fp32."""
    ref = torch.load(os.path.join(DATA, name), weights_only=True)
    for key in ('model', 'state_dict'):
        if key in ref:
            ref[key] = {
                k: v.float() if v.is_floating_point() else v
                for k, v in ref[key].items()
            }
    return ref


def run_tool(args, cwd=ROOT, timeout=600, env=None, check=True):
    """Run ``python <args>`` (a script under tools/ and its arguments) in a
    fresh process, as a user would, and return the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env['PYTHONWARNINGS'] = 'ignore'
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable] + list(args), cwd=cwd,
                          env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(args)} failed ({proc.returncode}):\n'
            f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def load_tool(name: str):
    """tools/<name>.py as a module, to call its functions in this process."""
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', os.path.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomise(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Non-trivial BN statistics/affines and attention biases, in place.

    Freshly built EfficientViT residual branches start at zero (BN weight 0),
    so tests that compare outputs need this to see real arithmetic.
    """
    from torch.nn.modules.batchnorm import _BatchNorm

    from efficientvit_mm.models.layers import CascadedGroupAttention
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * .1)
                m.running_var.copy_(torch.rand(n, generator=g) + .5)
                m.weight.copy_(torch.rand(n, generator=g) + .5)
                m.bias.copy_(torch.randn(n, generator=g) * .1)
            if isinstance(m, CascadedGroupAttention):
                m.attention_biases.copy_(
                    torch.randn(m.attention_biases.shape, generator=g))
    return model


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tmp_ckpt(tmp_path):
    """Save a checkpoint dict to a temp file and return its path."""

    def save(obj, name='ckpt.pth'):
        path = str(tmp_path / name)
        torch.save(obj, path)
        return path

    return save
