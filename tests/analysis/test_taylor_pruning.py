"""Taylor structured pruning (the paper's Fig. 5): the importance is the
first-order change of the loss when a unit is removed; units own exact
weight slices and FLOPs; pruning meets its budget."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from efficientvit_mm.analysis import taylor_pruning as tp
from efficientvit_mm.analysis.training import data_model_cfg
from efficientvit_mm.apis import build_model
from efficientvit_mm.errors import UserError
from efficientvit_mm.runtime import load_config
from efficientvit_mm.testing import randomise
from helpers import load_tool
from helpers.tiny_models import SHAPES_CLS_CONFIG as DATA_CONFIG
from helpers.tiny_models import build_tiny, write_tiny_config
from helpers.tool_outputs import png_size, read_csv

FAMILIES = ['efficientvit', 'swin', 'vit']


def tiny_double(family):
    """A tiny classifier in float64 with a random (non-zero) head and, for
    EfficientViT, non-zero residual branches (they start at zero)."""
    torch.manual_seed(0)
    model = randomise(build_tiny(family)).double()
    for p in model.head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return model.eval()


def fixed_loss(model, seed=1):
    """The cross-entropy of one fixed batch, as a function of nothing."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 32, 32, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (4, ), generator=gen)
    return lambda: F.cross_entropy(model(x, mode='tensor'), y)


def sample(units, per_kind=4):
    """A few units of each kind, spread over the model."""
    out = []
    for kind in tp.KINDS:
        mine = [u for u in units if u.kind == kind]
        if mine:
            out += [
                mine[i] for i in sorted(
                    set(np.linspace(0,
                                    len(mine) - 1, per_kind, dtype=int)))
            ]
    return out


@pytest.mark.parametrize('family', FAMILIES)
def test_importance_is_the_first_order_change_of_the_loss(family):
    """-dL/dg is the slope of the real loss along the removal of a unit:
    the loss measured with its gate at 1 - eps and 1 + eps (central
    difference) changes by eps times it per eps of removal."""
    model = tiny_double(family)
    pruner = tp.Pruner(model)
    loss = fixed_loss(model)
    eps = 1e-4

    def loss_at(unit, value):
        with torch.no_grad():
            unit.gate[unit.index] = value
            out = float(loss())
            unit.gate[unit.index] = 1.
        return out

    with pruner:
        estimate = pruner.importance([loss])
        units = sample(pruner.units)
        scale = max(abs(estimate[u][1]) for u in units)
        assert scale > 1e-4
        for unit in units:
            change = (loss_at(unit, 1 - eps) - loss_at(unit, 1 + eps)) / (2 *
                                                                          eps)
            assert change == pytest.approx(estimate[unit][1], rel=1e-5,
                                           abs=1e-7 * scale), unit


@pytest.mark.parametrize('family', FAMILIES)
def test_importance_predicts_the_loss_change_of_removing_a_unit(family):
    """Removing whole units (gate 0), the real change of the loss follows
    the first-order estimate on a small model: they correlate, the squared
    importance ranks units as the size of the real change, and for the
    larger half of the estimates the median ratio is one."""
    model = tiny_double(family)
    pruner = tp.Pruner(model)
    loss = fixed_loss(model)
    actual, predicted = [], []
    with pruner:
        estimate = pruner.importance([loss])
        with torch.no_grad():
            base = float(loss())
            for unit in sample([u for u in pruner.units if u.kind != 'head'],
                               24):
                unit.gate[unit.index] = 0.
                actual.append(float(loss()) - base)
                unit.gate[unit.index] = 1.
                predicted.append(estimate[unit][1])
                assert estimate[unit][0] == pytest.approx(
                    estimate[unit][1]**2)  # one batch: square of the slope
    actual, predicted = np.array(actual), np.array(predicted)
    assert np.corrcoef(actual, predicted)[0, 1] > 0.9
    assert np.corrcoef(ranks(np.abs(actual)),
                       ranks(np.abs(predicted)))[0, 1] > 0.9
    large = np.abs(predicted) >= np.median(np.abs(predicted))
    assert np.median(actual[large] / predicted[large]) == pytest.approx(
        1, abs=0.1)


def ranks(values):
    """Rank of each value (0 = smallest)."""
    return np.argsort(np.argsort(values))


@pytest.mark.parametrize('family', FAMILIES)
def test_units_own_exactly_the_weights_they_remove(family):
    """Zeroing the weight slices a unit owns gives the model its gate at 0
    gives; no weight entry belongs to two units."""
    model = tiny_double(family)
    pruner = tp.Pruner(model)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for unit in sample(pruner.units, 2):
        group = [unit]
        if unit.kind == 'head':  # a head takes its Q/K and V along
            attn = next(g for g in pruner.attention if unit in g.heads)
            group += attn.qk[unit.head] + attn.v[unit.head]
        with pruner, torch.no_grad():
            unit.gate[unit.index] = 0.
            gated = model(x, mode='tensor')
            unit.gate[unit.index] = 1.
        saved = [(p, d, i, p.select(d, i).clone()) for u in group
                 for p, d, i in u.slices]
        with torch.no_grad():
            for p, d, i, _ in saved:
                p.select(d, i).zero_()
            zeroed = model(x, mode='tensor')
            for p, d, i, value in saved:
                p.select(d, i).copy_(value)
        assert torch.allclose(gated, zeroed, atol=1e-10), unit
    owners = {}
    for u in pruner.units:
        for p, d, i in u.slices:
            key = (id(p), i)
            assert owners.setdefault(id(p), d) == d  # one dim per weight
            assert key not in owners, f'{u} shares a slice'
            owners[key] = u


@pytest.mark.parametrize('family', FAMILIES)
def test_unit_flops_are_those_of_their_layers(family):
    """The multiply-adds of all units of a layer are what mmengine's
    FlopAnalyzer counts for its linear and conv layers."""
    from efficientvit_mm.analysis.complexity import flops_by_module
    from efficientvit_mm.apis.model import TensorForward
    model = build_tiny(family)
    pruner = tp.Pruner(model)
    pruner.count_tokens(lambda x: model(x, mode='tensor'), (32, 32))
    counted = flops_by_module(
        TensorForward(model), (torch.zeros(1, 3, 32, 32), ))
    modules = dict(model.named_modules())
    for layer in {u.layer for u in pruner.units}:
        mine = [u for u in pruner.units if u.layer == layer]
        parts = [
            n for n, m in modules.items() if n.startswith(layer + '.')
            and isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
        ]
        assert sum(u.flops for u in mine) == sum(counted[f'model.{n}']
                                                 for n in parts), layer


def test_pruning_meets_the_budget_step_by_step(tmp_path, tiny_crops):
    data_cfg = load_config(DATA_CONFIG, tiny_crops[1])
    cfg = data_model_cfg(
        load_config(write_tiny_config(tmp_path, 'vit')), data_cfg)
    torch.manual_seed(0)
    model = build_model(cfg)
    lines = []
    result = tp.taylor_prune(model, data_cfg, (32, 32), 'params', 0.7, steps=2,
                             batches=1, say=lines.append)
    total = result['totals']['params']
    steps = result['steps']
    assert [s['step'] for s in steps] == [0, 1, 2]
    assert steps[0]['params'] == total == sum(p.numel()
                                              for p in model.parameters())
    assert steps[1]['params'] <= 0.85 * total
    assert 0.6 * total < steps[2]['params'] <= 0.7 * total
    assert steps[2]['flops'] < steps[0]['flops']
    assert all(0 <= s['top1'] <= 100 for s in steps)
    for block in result['blocks']:
        for key in ('q', 'k', 'v', 'ffn'):
            assert block[f'{key}_after'] <= block[f'{key}_before']
        assert block['q_after'] == block['k_after']  # pruned in pairs
        assert block['v_before'] == 1.0 and block['ffn_before'] == 2.0
    assert any(b['ffn_after'] < 2.0 for b in result['blocks'])
    assert any('step 2/2' in line for line in lines)
    with pytest.raises(UserError, match='fraction'):
        tp.taylor_prune(model, data_cfg, (32, 32), 'params', 1.5)
    # below the share of the layers pruning never touches: said, not pruned
    # down to nothing
    fixed = total - sum(u.params for u in tp.Pruner(model).units)
    with pytest.raises(UserError, match='cannot be reached') as err:
        tp.taylor_prune(model, data_cfg, (32, 32), 'params',
                        0.9 * fixed / total)
    assert f'above {fixed / total:.2f}' in str(err.value)
    # the ViT head starts at zero: no gradient reaches any gate
    torch.manual_seed(0)
    fresh = build_model(cfg)
    torch.nn.init.zeros_(fresh.head.layers.head.weight)
    with pytest.raises(UserError, match='importance 0'):
        tp.taylor_prune(fresh, data_cfg, (32, 32), 'params', 0.7, steps=1,
                        batches=1)


def test_removing_every_value_channel_removes_the_head():
    model = build_tiny('vit')
    pruner = tp.Pruner(model)
    group = pruner.attention[0]
    for unit in group.v[1]:
        pruner.remove(unit)
    assert not group.heads[1].alive
    assert not any(u.alive for u in group.qk[1])
    assert group.heads[0].alive and all(u.alive for u in group.qk[0])


def test_a_step_counts_what_dependents_save():
    """Removing a head's last V channel takes its Q/K along: their saving
    counts towards the goal, so the step stops there."""
    model = build_tiny('vit')
    pruner = tp.Pruner(model)
    group = pruner.attention[0]
    head = group.v[1] + group.qk[1] + [group.heads[1]]
    scores = {u: (0. if u in group.v[1] else 1., 0.) for u in pruner.units}
    v_params = sum(u.params for u in group.v[1])
    start = sum(u.params for u in pruner.units)
    removed = tp.prune_step(pruner, scores, 'params', start - v_params - 1,
                            start)
    assert removed == len(head)
    dead = [u for u in pruner.units if not u.alive]
    assert set(map(id, dead)) == set(map(id, head))
    assert pruner.removed_cost('params') > v_params + 1


def test_batches_cycle_through_the_loader_and_an_empty_one_is_refused():
    model = build_tiny('vit')
    assert len(list(tp.batch_losses(model, [{}], 3))) == 3
    with pytest.raises(UserError, match='gives no batch'):
        list(tp.batch_losses(model, [], 1))


def test_a_model_without_known_blocks_is_refused():
    with pytest.raises(UserError, match='no block Taylor pruning knows'):
        tp.Pruner(build_tiny('resnet'))


def test_a_folded_model_is_refused():
    """Deploy mode folds the BatchNorms whose channels pruning removes."""
    from efficientvit_mm.deploy import switch_to_deploy
    model = switch_to_deploy(build_tiny('efficientvit'))
    with pytest.raises(UserError, match='before switch_to_deploy'):
        tp.Pruner(model)


def test_tool_prunes_swin_to_a_flops_budget(tmp_path, tiny_crops, tmp_ckpt,
                                            capsys):
    config = write_tiny_config(tmp_path, 'swin')
    ckpt = tmp_ckpt(dict(state_dict=build_tiny('swin').state_dict()))
    out = tmp_path / 'tp'
    tool = load_tool('analysis/taylor_pruning')
    tool.main([
        config, ckpt, '--data-config', DATA_CONFIG, '--data-options',
        *tiny_crops[0], '--target-flops', '0.6', '--steps', '2', '--batches',
        '1', '--out-dir',
        str(out)
    ])
    blocks = read_csv(out / 'taylor_pruning.csv')
    assert [b['block'] for b in blocks] == [
        f'backbone.stages.{s}.blocks.{b}' for s in range(2) for b in range(2)
    ]
    assert {b['ffn_before'] for b in blocks} == {'4.0'}
    steps = read_csv(out / 'taylor_pruning_steps.csv')
    assert int(steps[-1]['flops']) <= 0.6 * int(steps[0]['flops'])
    assert png_size(out / 'taylor_pruning.png')[0] > 600
    stdout = capsys.readouterr().out
    assert 'pruning to 60% of the flops' in stdout and 'step 2/2' in stdout


def test_tool_flags():
    tool = load_tool('analysis/taylor_pruning')
    base = ['configs/efficientvit_m0_in1k.py', 'none', '--data-config', 'x']
    args = tool.parse_args(base)
    assert (args.budget, args.target) == ('flops', 0.5)
    args = tool.parse_args(base + ['--target-params', '0.3'])
    assert (args.budget, args.target) == ('params', 0.3)
    with pytest.raises(SystemExit):  # one budget at a time
        tool.parse_args(base +
                        ['--target-params', '0.3', '--target-flops', '0.5'])
