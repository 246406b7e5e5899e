"""Official-layout detector weights for the conversion tests."""
from collections import OrderedDict

import torch

# ImageNet settings of the released EfficientViT models, written out from
# the paper's Table 1 (independently of the package's arch table).
ARCHS = {
    'm0':
    dict(dims=[64, 128, 192], depths=[1, 2, 3], heads=[4, 4, 4],
         kernels=[5, 5, 5, 5]),
    'm4':
    dict(dims=[128, 256, 384], depths=[1, 2, 3], heads=[4, 4, 4],
         kernels=[7, 5, 3, 3]),
}


def official_backbone_state(arch: str, window: int = 7,
                            seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """Random weights under the key names of the official ``downstream``
    backbone (``blocks1.0.mixer.m.attn.qkvs.0.c.weight``...), built from the
    structure of the official code: stem convs 0/2/4/6, blocks{1,2,3} with
    the downsampling sandwich as entries 0-2 of blocks2 and blocks3."""
    gen = torch.Generator().manual_seed(seed)
    cfg = ARCHS[arch]
    sd = OrderedDict()

    def rand(*shape, scale=0.1):
        return torch.randn(*shape, generator=gen) * scale

    def conv_bn(prefix, cin, cout, k=1, groups=1):
        sd[f'{prefix}.c.weight'] = rand(cout, cin // groups, k, k,
                                        scale=(cin // groups * k * k)**-0.5)
        sd[f'{prefix}.bn.weight'] = 1 + rand(cout)
        sd[f'{prefix}.bn.bias'] = rand(cout)
        sd[f'{prefix}.bn.running_mean'] = rand(cout)
        sd[f'{prefix}.bn.running_var'] = 1 + rand(cout).abs()
        sd[f'{prefix}.bn.num_batches_tracked'] = torch.tensor(100)

    def ffn(prefix, dim):
        conv_bn(f'{prefix}.pw1', dim, 2 * dim)
        conv_bn(f'{prefix}.pw2', 2 * dim, dim)

    def block(prefix, dim, heads):
        conv_bn(f'{prefix}.dw0.m', dim, dim, 3, groups=dim)
        ffn(f'{prefix}.ffn0.m', dim)
        attn = f'{prefix}.mixer.m.attn'
        value_dim = dim // heads
        for h in range(heads):
            conv_bn(f'{attn}.qkvs.{h}', dim // heads, 2 * 16 + value_dim)
            k = cfg['kernels'][h]
            conv_bn(f'{attn}.dws.{h}', 16, 16, k, groups=16)
        conv_bn(f'{attn}.proj.1', value_dim * heads, dim)
        sd[f'{attn}.attention_biases'] = rand(heads, window * window)
        sd[f'{attn}.attention_bias_idxs'] = torch.zeros(
            window * window, window * window, dtype=torch.long)
        conv_bn(f'{prefix}.dw1.m', dim, dim, 3, groups=dim)
        ffn(f'{prefix}.ffn1.m', dim)

    dims = cfg['dims']
    widths = [3, dims[0] // 8, dims[0] // 4, dims[0] // 2, dims[0]]
    for i in range(4):
        conv_bn(f'patch_embed.{2 * i}', widths[i], widths[i + 1], 3)
    for stage, (dim, depth,
                heads) in enumerate(zip(dims, cfg['depths'], cfg['heads'])):
        name = f'blocks{stage + 1}'
        offset = 0
        if stage > 0:
            prev = dims[stage - 1]
            hidden = 4 * prev
            conv_bn(f'{name}.0.0.m', prev, prev, 3, groups=prev)
            ffn(f'{name}.0.1.m', prev)
            conv_bn(f'{name}.1.conv1', prev, hidden)
            conv_bn(f'{name}.1.conv2', hidden, hidden, 3, groups=hidden)
            sd[f'{name}.1.se.fc1.weight'] = rand(hidden // 4, hidden, 1, 1)
            sd[f'{name}.1.se.fc1.bias'] = rand(hidden // 4)
            sd[f'{name}.1.se.fc2.weight'] = rand(hidden, hidden // 4, 1, 1)
            sd[f'{name}.1.se.fc2.bias'] = rand(hidden)
            conv_bn(f'{name}.1.conv3', hidden, dim)
            conv_bn(f'{name}.2.0.m', dim, dim, 3, groups=dim)
            ffn(f'{name}.2.1.m', dim)
            offset = 3
        for d in range(depth):
            block(f'{name}.{offset + d}', dim, heads)
    return sd


def _conv(sd, prefix, cin, cout, k, gen, transposed=False):
    shape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
    sd[f'{prefix}.weight'] = torch.randn(*shape, generator=gen) * 0.05
    sd[f'{prefix}.bias'] = torch.randn(cout, generator=gen) * 0.05


def official_neck_state(in_channels, out_channels, num_trans, extra_convs,
                        seed=1):
    """Neck weights under the official EfficientViTFPN names (mmcv
    ConvModule: ``<module>.conv.weight``)."""
    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for i, cin in enumerate(in_channels):
        _conv(sd, f'neck.lateral_convs.{i}.conv', cin, out_channels, 1, gen)
    for i in range(len(in_channels)):
        _conv(sd, f'neck.fpn_convs.{i}.conv', out_channels, out_channels, 3,
              gen)
    for j in range(extra_convs):  # 'on_input': the first reads the input
        cin = in_channels[-1] if j == 0 else out_channels
        _conv(sd, f'neck.fpn_convs.{len(in_channels) + j}.conv', cin,
              out_channels, 3, gen)
    for j in range(num_trans):
        _conv(sd, f'neck.extra_trans_convs.{j}.conv', out_channels,
              out_channels, 2, gen, transposed=True)
        _conv(sd, f'neck.extra_fpn_convs.{j}.conv', out_channels, out_channels,
              3, gen)
    return sd


def official_retinanet_head_state(num_classes=80, channels=256, anchors=9,
                                  stacked=4, seed=2):
    """RetinaHead weights under mmdet 2.x names."""
    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for i in range(stacked):
        _conv(sd, f'bbox_head.cls_convs.{i}.conv', channels, channels, 3, gen)
        _conv(sd, f'bbox_head.reg_convs.{i}.conv', channels, channels, 3, gen)
    _conv(sd, 'bbox_head.retina_cls', channels, anchors * num_classes, 3, gen)
    _conv(sd, 'bbox_head.retina_reg', channels, anchors * 4, 3, gen)
    return sd


def official_mask_rcnn_heads_state(num_classes=80, channels=256, seed=3):
    """RPN, bbox and mask head weights under mmdet 2.x names."""
    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    _conv(sd, 'rpn_head.rpn_conv', channels, channels, 3, gen)
    _conv(sd, 'rpn_head.rpn_cls', channels, 3, 1, gen)
    _conv(sd, 'rpn_head.rpn_reg', channels, 12, 1, gen)

    def fc(prefix, cin, cout):
        sd[f'{prefix}.weight'] = torch.randn(cout, cin, generator=gen) * 0.01
        sd[f'{prefix}.bias'] = torch.randn(cout, generator=gen) * 0.01

    fc('roi_head.bbox_head.shared_fcs.0', channels * 7 * 7, 1024)
    fc('roi_head.bbox_head.shared_fcs.1', 1024, 1024)
    fc('roi_head.bbox_head.fc_cls', 1024, num_classes + 1)
    fc('roi_head.bbox_head.fc_reg', 1024, num_classes * 4)
    for i in range(4):
        _conv(sd, f'roi_head.mask_head.convs.{i}.conv', channels, channels, 3,
              gen)
    _conv(sd, 'roi_head.mask_head.upsample', channels, channels, 2, gen,
          transposed=True)
    _conv(sd, 'roi_head.mask_head.conv_logits', channels, num_classes, 1, gen)
    return sd


def mmdet2_checkpoint(state, classes=None):
    """Wrap a state dict the way mmdet 2.x saved its checkpoints."""
    meta = dict(mmdet_version='2.28.2', epoch=12, iter=87960)
    if classes is not None:
        meta['CLASSES'] = tuple(classes)
    return dict(meta=meta, state_dict=state)
