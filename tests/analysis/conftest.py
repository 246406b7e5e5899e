"""Fixtures of the analysis tests: a tiny set of shape crops and the
options that point the shapes classification config at it."""
import pytest


@pytest.fixture(scope='session')
def tiny_crops(tmp_path_factory):
    """32x32 shape crops (4 classes) of 8 train and 4 val scenes, and the
    options that make the demo's classification config read them in one
    process, 8 images a batch: as ``--data-options`` arguments and as the
    dict :func:`load_config` takes."""
    from efficientvit_mm.datasets import export_crops
    root = str(tmp_path_factory.mktemp('tiny_crops'))
    export_crops(root, dict(train=8, val=4), seed=0, crop_size=32,
                 image_size=128, num_objects=(2, 4), size_range=(0.15, 0.3))
    options = dict(data_root=root)
    for split in ('train', 'val'):
        options.update({
            f'{split}_dataloader.batch_size': 8,
            f'{split}_dataloader.num_workers': 0,
            f'{split}_dataloader.persistent_workers': False
        })
    return [f'{k}={v}' for k, v in options.items()], options


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these models are tiny, and on a shared machine
    threads that wait for each other make them many times slower."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
