"""type='EfficientViT' builds from every registry, with any one toolbox."""
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT

REGISTRIES = [
    'mmengine.registry', 'mmdet.registry', 'mmseg.registry',
    'mmpretrain.registry'
]


@pytest.mark.parametrize('module', REGISTRIES)
def test_builds_from_each_registry(module):
    import importlib
    registry = importlib.import_module(module).MODELS
    from efficientvit_mm.models import EfficientViT, EfficientViTFPN
    backbone = registry.build(
        dict(type='EfficientViT', arch='m4', window_size=(7, 7, 7)))
    assert type(backbone) is EfficientViT
    neck = registry.build(
        dict(type='EfficientViTFPN', in_channels=[128, 256,
                                                  384], out_channels=64,
             num_outs=5, num_extra_trans_convs=1, add_extra_convs='on_input'))
    assert type(neck) is EfficientViTFPN


_BLOCKER = '''
import sys
BLOCKED = {blocked!r}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(
                f'No module named {{name!r}} (simulated)')
        return None
sys.meta_path.insert(0, Blocker())
'''


@pytest.mark.parametrize('available', ['mmdet', 'mmseg', 'mmpretrain', None])
def test_import_works_with_only_one_toolbox(available):
    toolboxes = {'mmdet', 'mmseg', 'mmpretrain'}
    blocked = sorted(toolboxes - {available})
    registry = f'{available}.registry' if available else 'mmengine.registry'
    code = _BLOCKER.format(blocked=blocked) + textwrap.dedent(f'''
        import efficientvit_mm
        from {registry} import MODELS
        m = MODELS.build(dict(type='EfficientViT', arch='m0'))
        assert type(m).__name__ == 'EfficientViT'
        assert not {blocked!r} and True or not any(
            b in sys.modules for b in {blocked!r})
        print('OK', type(m).__module__)
    ''')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'OK efficientvit_mm' in proc.stdout
