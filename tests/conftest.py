"""Fixtures of the whole suite; shared helpers are in tests/helpers/."""
import os
import sys

# pytest-xdist runs the suite in two worker processes (pytest.ini): each
# computes, and starts its tools, on one thread, so the two share the cores
# instead of spinning against each other
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ['OMP_NUM_THREADS'] = '1'
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest
import torch

from helpers import ROOT

if ROOT not in sys.path:  # this checkout's package, installed or not
    sys.path.insert(0, ROOT)

import efficientvit_mm  # noqa: E402,F401  (registers modules, applies compat)

if os.environ.get('PYTEST_XDIST_WORKER'):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _no_stale_mmengine_loggers():
    """Each test starts without mmengine loggers.

    An MMLogger prints through a handler bound to the ``sys.stdout`` of the
    test that made it, which pytest closes when that test ends; a later
    test logging to the 'current' logger (a warning on switching the
    default scope, say) then gets '--- Logging error ---' and a traceback
    on its own stderr. Seen on CI, where the order of tests varies."""
    yield
    from mmengine.logging import MMLogger
    MMLogger._instance_dict.clear()


@pytest.fixture
def tmp_ckpt(tmp_path):
    """Save a checkpoint dict to a temp file and return its path."""

    def save(obj, name='ckpt.pth'):
        path = str(tmp_path / name)
        torch.save(obj, path)
        return path

    return save


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    """A tiny shapes set in COCO format: 8 train and 4 val 128x128 images,
    4 classes, boxes and polygon masks."""
    from efficientvit_mm.datasets import export_coco
    root = tmp_path_factory.mktemp('tiny_coco')
    export_coco(
        str(root), dict(train=8, val=4), seed=0, image_size=128,
        num_objects=(1, 4), size_range=(0.12, 0.35))
    return str(root)
