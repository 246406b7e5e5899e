"""Official and timm classifier checkpoints, converted, give the reference
logits through the mmpretrain classifier built from our config."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.runner import load_checkpoint

from efficientvit_mm.apis import build_model
from efficientvit_mm.runtime import load_config
from helpers import ROOT, load_reference


@pytest.mark.parametrize('ref_name,container', [
    ('official_cls_m0.pth', lambda r: {
        'model': r['model']
    }),
    ('timm_cls_m0.pth', lambda r: r['state_dict']),
])
def test_converted_classifier_reproduces_reference_logits(
        ref_name, container, tmp_path):
    ref = load_reference(ref_name)
    src, dst = str(tmp_path / 'release.pth'), str(tmp_path / 'mm.pth')
    torch.save(container(ref), src)
    proc = subprocess.run([
        sys.executable, 'tools/convert_checkpoint.py', src, dst, '--config',
        'configs/efficientvit_m0_in1k.py'
    ], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = load_config(os.path.join(ROOT, 'configs', 'efficientvit_m0_in1k.py'))
    model = build_model(cfg).eval()
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    with torch.no_grad():
        logits = model(ref['input'], mode='tensor')
        feats = model.extract_feat(ref['input'])
    assert logits.shape == (2, 1000)
    assert (logits - ref['logits']).abs().max().item() <= 1e-4
    assert (feats[-1] - ref['features'][-1].mean((2, 3))).abs().max() <= 1e-4
