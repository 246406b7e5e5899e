"""The checkpoint a run starts from, checked against the built model before
anything runs.

``tools/test.py CKPT``, ``load_from`` and ``--resume`` all go through
:func:`prepare_start`, called once the Runner (hence the model) exists:

* the file is read safely once, and compared key by key with the model
  (:func:`~efficientvit_mm.checkpoint.loading.compare_state_dict`); a file
  that does not fit stops the run with the counts, the first keys and the
  likely fix;
* under ``load_from`` the heads may differ (fine-tuning with another
  ``num_classes``): their mismatched weights are left out, with one warning
  line; backbone and neck must fit;
* ``--resume`` needs a training state (a weights-only file is explained);
  without a file it takes the checkpoint ``last_checkpoint`` names, or, when
  that is missing, broken or names a missing file, the newest checkpoint of
  the work dir that loads, and says which; with none it says there is
  nothing to resume.

The Runner then loads the checked state itself (no second read, no wall of
mmengine "size mismatch" lines).
"""
import glob
import os
import os.path as osp
from typing import Callable, List, Optional, Set, Tuple

from ..checkpoint.io import is_temp_file, load_checkpoint_file
from ..checkpoint.layouts import detect_layout, extract_state_dict
from ..checkpoint.loading import (KeyReport, compare_state_dict,
                                  fit_attention_biases)
from ..errors import (CheckpointFileError, CheckpointMismatchError,
                      ResumeError, UserError)

# what a training state holds besides the weights
TRAINING_STATE = ('meta', 'message_hub')


def is_head_key(key: str) -> bool:
    """Whether ``key`` belongs to a head (``bbox_head.``, ``roi_head.``,
    ``decode_head.``, ``auxiliary_head.``, ``head.``...)."""
    return key.split('.', 1)[0].endswith('head')


def is_training_state(checkpoint) -> bool:
    return isinstance(checkpoint, dict) and all(
        k in checkpoint
        for k in TRAINING_STATE) and isinstance(checkpoint['meta'], dict) \
        and 'iter' in checkpoint['meta']


def checkpoints_in(work_dir: str) -> List[str]:
    """The ``*.pth`` files of ``work_dir``, newest first; ``best_*`` ones
    (saved without the optimizer state) after the others."""
    paths = [
        p for p in glob.glob(osp.join(work_dir, '*.pth'))
        if not is_temp_file(osp.basename(p)) and osp.isfile(p)
    ]
    return sorted(
        paths, key=lambda p:
        (osp.basename(p).startswith('best_'), -os.stat(p).st_mtime_ns))


def _read_resumable(path: str) -> Tuple[Optional[dict], str]:
    """(checkpoint, '') when ``path`` is a training state that loads, else
    (None, why not)."""
    try:
        checkpoint = load_checkpoint_file(path)
    except CheckpointFileError as err:
        return None, str(err)[:100]
    if not is_training_state(checkpoint):
        return None, f'{path} is no training state'
    return checkpoint, ''


def find_resume_checkpoint(work_dir: str) -> Tuple[str, dict, str]:
    """(path, checkpoint, note) of the training state ``--resume`` takes in
    ``work_dir``; ``note`` is non-empty when it is not the one
    ``last_checkpoint`` names."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    named, problem = None, f'{pointer} is missing'
    if osp.isfile(pointer):
        with open(pointer, errors='replace') as f:
            named = f.read().strip()
        if not named:
            problem = f'{pointer} is empty'
        elif not osp.isfile(named):
            problem = f'{pointer} names {named}, which is missing'
        else:
            checkpoint, why = _read_resumable(named)
            if checkpoint is not None:
                return named, checkpoint, ''
            problem = f'{pointer} names {named}, which does not load ({why})'
    for path in checkpoints_in(work_dir):
        if named and osp.abspath(path) == osp.abspath(named):
            continue
        checkpoint, _ = _read_resumable(path)
        if checkpoint is not None:
            return path, checkpoint, (
                f'{problem}; resuming from the newest checkpoint that loads: '
                f'{path}')
    raise ResumeError(
        f'nothing to resume in {work_dir}: {problem} and no checkpoint there '
        f'loads. Train without --resume to start afresh, or give the '
        f'checkpoint: --resume CHECKPOINT.')


def _hint(report: KeyReport, state: dict, path: str, config: str) -> str:
    """The likely cause and fix of a checkpoint that does not fit."""
    bare = [
        k[len('backbone.'):] if k.startswith('backbone.') else k for k in state
    ]
    try:
        layout = detect_layout(dict.fromkeys(bare))
    except UserError:
        layout = None
    if layout in ('official', 'timm'):
        return (f'It is a {layout} release file: convert it first: python '
                f'tools/convert_checkpoint.py {path} CONVERTED.pth --config '
                f'{config}')
    if layout and report.missing and all(
            k.startswith(('backbone.', 'patch_embed.', 'stages.'))
            for k in state):
        return ('It holds backbone weights only: give them to the backbone '
                '(--cfg-options model.backbone.init_cfg.type=Pretrained '
                f'model.backbone.init_cfg.checkpoint={path}) and train.')
    if report.missing and not (report.mismatched or report.unexpected):
        return ('It lacks weights the model has: the file is incomplete, or '
                'of a model without those parts.')
    return ('Is it a checkpoint of this config (same arch, neck and head)? '
            'Evaluate or resume a checkpoint with the config it was '
            'trained with.')


def check_fit(model_state: dict, state: dict, path: str, mode: str,
              config: str) -> Tuple[dict, Set[str], Optional[str]]:
    """(state to load, keys left out, warning) for ``state`` on a model
    whose own state dict is ``model_state``; raises
    :class:`CheckpointMismatchError` when it does not fit.

    ``mode``: 'test' and 'resume' need every key and shape; 'load_from'
    lets the heads differ."""
    if mode == 'load_from':
        state = fit_attention_biases(model_state, state)
    report = compare_state_dict(model_state, state)
    if report.fits:
        return state, set(), None
    if mode == 'load_from' and report.select(
            lambda k: not is_head_key(k)).fits:
        heads = sorted({k.split('.', 1)[0] for k in report.bad_keys})
        left_out = set(report.mismatched_keys + report.unexpected)
        kept = {k: v for k, v in state.items() if k not in left_out}
        return kept, left_out, (
            f'load_from {path}: {len(report.bad_keys)} weights of '
            f'{", ".join(heads)} do not fit ({report.describe(2)}); they keep '
            f'their initial values (fine-tuning another head)')
    what = dict(test='checkpoint', resume='resume checkpoint',
                load_from='load_from checkpoint')[mode]
    rule = ' Under load_from only head weights may differ.' \
        if mode == 'load_from' else ''
    raise CheckpointMismatchError(
        f'{what} {path} does not fit the model of {config}: '
        f'{report.describe(3)}.\n'
        f'{_hint(report, state, path, config)}{rule}')


def _loader(runner, path: str, checkpoint: dict, state: dict,
            plain: Callable) -> Callable:
    """``runner.load_checkpoint`` that loads ``state``, checked by
    :func:`check_fit`, when asked for ``path`` (and returns ``checkpoint``,
    whose optimizer and scheduler states a resume takes); any other call
    goes to ``plain`` with its arguments."""
    held = [checkpoint]

    def load_checkpoint(filename, *args, **kwargs):
        if filename != path or not held:
            return plain(filename, *args, **kwargs)
        from ..engine.hooks import bare_model
        checkpoint = held.pop()
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        bare_model(runner.model).load_state_dict(
            state, strict=False)  # checked already
        runner._has_loaded = True
        runner.logger.info(f'loaded {len(state)} checked tensors from '
                           f'{filename}')
        return checkpoint

    return load_checkpoint


def prepare_start(runner, cfg, command: str, config: str) -> Optional[str]:
    """Check the checkpoint the run starts from (``command``: 'train' or
    'test') against ``runner``'s model and make the Runner load exactly
    that; returns its path (None when the run starts from scratch)."""
    resume = command == 'train' and bool(cfg.get('resume'))
    path = cfg.get('load_from')
    if not resume and not path:
        return None
    if path and '://' in path and not path.startswith(('http://', 'https://')):
        return None  # open-mmlab://, s3://...: mmengine's own loaders
    mode = 'test' if command == 'test' else 'resume' if resume \
        else 'load_from'
    if resume and not path:
        path, checkpoint, note = find_resume_checkpoint(cfg.work_dir)
        if note:
            runner.logger.warning(note)
    else:
        checkpoint = load_checkpoint_file(path)
        if resume and not is_training_state(checkpoint):
            raise ResumeError(
                f'{path} holds weights only, not a training state to resume '
                f'(no {" / ".join(TRAINING_STATE)}). To train from these '
                f'weights, use load_from instead of --resume: --cfg-options '
                f'load_from={path}')
    from ..engine.hooks import bare_model
    state = extract_state_dict(checkpoint)
    state, _, warning = check_fit(
        bare_model(runner.model).state_dict(), state, path, mode, config)
    if warning:
        runner.logger.warning(warning)
    runner._load_from = path
    runner.load_checkpoint = _loader(runner, path, checkpoint, state,
                                     runner.load_checkpoint)
    return path
