"""The config a tool runs."""
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG = osp.join(ROOT, 'configs/fpn_efficientvit_m0_ade20k.py')


def test_second_run_in_a_process_gets_its_own_visualizer(tmp_path):
    """mmengine returns an existing visualizer of the same name, with the
    first run's folder; the tools leave the name to the runner then, so the
    second run logs into its own work dir."""
    from mmseg.visualization import SegLocalVisualizer

    from efficientvit_mm.runtime.launch import tool_config
    name = {'visualizer.name': f'probe_{tmp_path.name}'}  # not yet taken
    first = tool_config(SEG, name, 'none', str(tmp_path / 'a'))
    assert first.visualizer['name'] == name['visualizer.name']
    SegLocalVisualizer.get_instance(
        name['visualizer.name'], vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path / 'a'))
    second = tool_config(SEG, name, 'none', str(tmp_path / 'b'))
    assert 'name' not in second.visualizer
    assert second.visualizer['type'] == 'SegLocalVisualizer'
