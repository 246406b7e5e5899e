# The paper's detection schedule (EfficientViT, CVPR 2023): AdamW lr 1e-4,
# weight decay 0.05 but none on the attention-bias tables (learned biases,
# like Swin's relative position table), 12 epochs with lr x0.1 at epochs 8
# and 11 and a 500-iteration linear warm-up from 0.001 x lr (mmdet's 1x
# schedule as it is), for 8 GPUs x 2 images: `--auto-scale-lr` scales lr to
# the real total batch.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
auto_scale_lr = dict(enable=False, base_batch_size=16)
