"""Loading configs the way ``tools/`` need them, and reading them: the
task a config describes, its datasets and evaluators."""
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from ..errors import PreflightError
from .spelling import nearest

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')
# default_scope of a config -> the task it describes
TASKS = {
    'mmdet': 'detection',
    'mmseg': 'segmentation',
    'mmpretrain': 'classification'
}


def task_of(cfg) -> str:
    """'detection', 'segmentation' or 'classification'."""
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise PreflightError(
            f'config has default_scope={scope!r}; efficientvit_mm tools '
            f'serve {sorted(TASKS)} configs')
    return TASKS[scope]


def dataset_cfgs(loader_cfg) -> Iterator[Tuple[str, dict]]:
    """Every dataset config inside a dataloader config, wrappers included
    (``RepeatDataset.dataset``, ``ConcatDataset.datasets``...), as
    ``(path, cfg)`` pairs."""

    def walk(cfg, path):
        if not isinstance(cfg, dict):
            return
        yield path, cfg
        if isinstance(cfg.get('dataset'), dict):
            yield from walk(cfg['dataset'], path + '.dataset')
        for i, sub in enumerate(cfg.get('datasets') or []):
            yield from walk(sub, f'{path}.datasets.{i}')

    if isinstance(loader_cfg, dict) and isinstance(
            loader_cfg.get('dataset'), dict):
        yield from walk(loader_cfg['dataset'], 'dataset')


def evaluator_cfgs(cfg) -> List[dict]:
    """Every metric config of the val and test evaluators."""
    out = []
    for key in EVALUATORS:
        ev = cfg.get(key)
        if isinstance(ev, dict):
            ev = ev.get('metrics', ev) if ev.get('type') == 'Evaluator' \
                else ev
        for item in (ev if isinstance(ev, (list, tuple)) else [ev]):
            if isinstance(item, dict):
                out.append(item)
    return out


def registries():
    """Every registry of mmengine and of the toolboxes imported so far."""
    from mmengine import registry
    roots = [
        r for r in vars(registry).values() if isinstance(r, registry.Registry)
    ]
    while roots:
        reg = roots.pop()
        yield reg
        roots.extend(reg.children.values())


def registered_class(name: str, kind: Optional[str] = None,
                     scope: Optional[str] = None):
    """The class registered as ``name``: in the ``kind`` registry ('model',
    'dataset'...) of toolbox ``scope`` if given (its modules imported), else
    in any registry imported so far; None if there is none."""
    if scope and kind:
        import importlib
        try:
            reg = getattr(
                importlib.import_module(f'{scope}.registry'),
                f'{kind.upper()}S')
            found = reg.get(name)
        except Exception:  # no such toolbox or registry
            found = None
        if found is not None:
            return found
    for reg in registries():
        if (kind is None or reg.name == kind) and name in reg.module_dict:
            return reg.module_dict[name]
    return None


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL (``http://``, ``s3://``...)."""
    return '://' in path


def _rebase(path: str, old: str, new: str) -> Optional[str]:
    """``path`` moved from under ``old`` to under ``new``, or None."""
    old_n = osp.normpath(old)
    path_n = osp.normpath(path)
    if path_n == old_n:
        return new
    if path_n.startswith(old_n.rstrip('/') + '/'):
        return osp.join(new, osp.relpath(path_n, old_n))
    return None


def apply_data_root(cfg, new_root: str, old_root: Optional[str]) -> int:
    """Point every dataset and evaluator of ``cfg`` that used ``old_root``
    at ``new_root``.

    mmengine resolves ``data_root`` while it parses a config, so a
    ``--cfg-options data_root=...`` alone changes nothing but the top-level
    key. This rewrites the dataset ``data_root`` of every dataloader and the
    files under it that evaluators name (``ann_file`` of ``CocoMetric``...).
    Returns the number of places changed.
    """
    changed = 0
    for loader_key in DATALOADERS:
        for _, ds in dataset_cfgs(cfg.get(loader_key)):
            root = ds.get('data_root')
            if root is None:
                continue
            if old_root is None or _rebase(root, old_root, new_root):
                ds['data_root'] = new_root if old_root is None else _rebase(
                    root, old_root, new_root)
                changed += 1
    if old_root is not None:
        for ev in evaluator_cfgs(cfg):
            for key in ('ann_file', 'outfile_prefix'):
                value = ev.get(key)
                if isinstance(value, str) and not is_remote(value):
                    moved = _rebase(value, old_root, new_root)
                    if moved is not None:
                        ev[key] = moved
                        changed += 1
    cfg['data_root'] = new_root
    return changed


def drop_pretrained(node) -> None:
    """Remove, in place, every pretrained-weights setting under ``node``
    (``init_cfg=dict(type='Pretrained')`` and ``pretrained=...``): the model
    then builds with random weights and reads no file."""
    if isinstance(node, dict):
        if node.get('pretrained'):
            node['pretrained'] = None
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_pretrained(value)


# top-level keys of the configs the tools run that mean something to
# mmengine's Runner, the toolboxes or this package (besides the Runner's own
# arguments, read from its signature)
KNOWN_KEYS = ('_base_', 'custom_imports', 'default_scope', 'runner_type',
              'work_dir', 'load_from', 'resume', 'launcher', 'data_root',
              'backend_args', 'vis_backends', 'visualizer', 'log_level',
              'log_processor', 'env_cfg', 'randomness', 'auto_scale_lr',
              'bad_image_limit', 'shapes_data', 'shapes_demo', 'tta_model',
              'tta_pipeline', 'dataset_type', 'metainfo')


def known_keys() -> set:
    import inspect

    from mmengine.runner import Runner
    return set(KNOWN_KEYS) | set(inspect.signature(Runner).parameters)


def misspelt_keys(cfg) -> List[Tuple[str, str]]:
    """(key, known key) for every top-level key of ``cfg`` that is no known
    key but one edit away from one (``trian_cfg`` -> ``train_cfg``):
    mmengine ignores such keys silently."""
    known = known_keys()
    found = []
    for key in cfg.keys():
        if key in known or len(key) < 4:
            continue
        meant = nearest(key, known, max_distance=1)
        if meant:
            found.append((key, meant))
    return found


def _read_config(path: str):
    """``Config.fromfile`` with a file that is not Python (or has a
    syntax error) reported with its line."""
    from mmengine.config import Config
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        where = f'line {err.lineno}' if err.lineno else 'somewhere'
        raise PreflightError(
            f'config {path} is not valid Python ({where}: {err.msg}); a '
            f'config is a Python file of settings such as '
            f'model = dict(...)') from None
    except FileNotFoundError as err:
        raise PreflightError(
            f'config {path} inherits {osp.normpath(err.filename)}, which '
            f'does not exist: '
            f'fix its _base_ (a path relative to the config\'s folder, or '
            f'mmdet::..., mmseg::..., mmpretrain::...)') from None
    except OSError as err:
        if 'Only py/yml/yaml/json' not in str(err):
            raise
        raise PreflightError(
            f'config {path}: mmengine reads .py, .json, .yml and .yaml '
            f'configs only') from None


def load_config(path: str, cfg_options: Optional[dict] = None):
    """A config file, or ``mmdet::...`` / ``mmseg::...`` /
    ``mmpretrain::...`` of an installed toolbox, with ``--cfg-options``
    merged and ``data_root`` applied to every dataloader and evaluator (see
    :func:`apply_data_root`)."""
    if '::' in path:
        from mmengine.hub import get_config
        try:
            cfg = get_config(path)
        except (FileNotFoundError, ValueError, KeyError) as err:
            raise PreflightError(f'config {path!r} not found: {err}') \
                from None
    elif not osp.isfile(path):
        raise PreflightError(f'config file {path!r} does not exist')
    else:
        cfg = _read_config(path)
    options = dict(cfg_options or {})
    new_root = options.pop('data_root', None)
    if options:
        cfg.merge_from_dict(options)
    if new_root is not None:
        if not isinstance(new_root, str) or not new_root:
            raise PreflightError(
                f'--cfg-options data_root must be a folder path, got '
                f'{new_root!r}')
        old_root = cfg.get('data_root')
        if apply_data_root(cfg, new_root, old_root) == 0:
            raise PreflightError(
                f'--cfg-options data_root={new_root} changed nothing: no '
                f'dataset of {osp.basename(path)} uses data_root '
                f'{old_root!r}. Set the dataset fields instead, e.g. '
                f'train_dataloader.dataset.data_root={new_root}')
    return cfg
