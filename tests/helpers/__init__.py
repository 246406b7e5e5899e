"""Helpers the tests share (fixtures live in tests/conftest.py)."""
import importlib.util
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, 'tests', 'data')


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
    fresh process, as a user would, and return the CompletedProcess.
    ``env`` adds variables; a value of None removes one."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env['PYTHONWARNINGS'] = 'ignore'
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    proc = subprocess.run([sys.executable] + list(args), cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def load_tool(name: str):
    """tools/<name>.py as a module, to call its functions in this process."""
    spec = importlib.util.spec_from_file_location(
        f'tool_{name.replace(os.sep, "_")}',
        os.path.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_exit_status(name: str, argv) -> int:
    """The status ``python tools/<name>.py ARGV`` exits with, run in this
    process the way its ``__main__`` runs it: ``main`` under
    :func:`efficientvit_mm.runtime.errors.exit_on_user_error` (an error the
    user can fix prints its short message to stderr)."""
    from efficientvit_mm.runtime.errors import exit_on_user_error
    try:
        exit_on_user_error(f'tools/{name}.py', load_tool(name).main, argv)
    except SystemExit as stop:
        return stop.code
    raise AssertionError(f'tools/{name}.py did not exit')
