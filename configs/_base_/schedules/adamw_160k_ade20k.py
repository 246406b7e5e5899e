# The Swin UperNet recipe on ADE20K: AdamW lr 6e-5, betas (0.9, 0.999),
# weight decay 0.01, 1500-iteration linear warm-up then linear (poly, power
# 1) decay to 0, 160k iterations at 16 images per iteration (8 GPUs x 2
# images). Swin spares its position-bias table and norm layers from weight
# decay; EfficientViT's counterparts are the attention-bias table and the
# BNs.
_base_ = ['mmseg::_base_/schedules/schedule_160k.py']

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.,
                       custom_keys={'attention_biases': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, begin=1500, end=160000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000,
                 val_interval=16000)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=16000, max_keep_ckpts=3,
                    save_best='mIoU'))
auto_scale_lr = dict(enable=False, base_batch_size=16)
