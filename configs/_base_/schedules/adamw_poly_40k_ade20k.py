# The PVT/Swin Semantic-FPN recipe on ADE20K: AdamW lr 2e-4, weight decay
# 1e-4 (none on the attention-bias tables), poly decay (power 0.9), 40k
# iterations at 32 images per iteration (4 GPUs x 8 images), checkpoints
# and validation every 4k iterations, the best mIoU kept.
_base_ = ['mmseg::_base_/schedules/schedule_40k.py']

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-4,
                                                       weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=40000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=3,
                    save_best='mIoU'))
# `--auto-scale-lr` scales lr to the real total batch size
auto_scale_lr = dict(enable=False, base_batch_size=32)
