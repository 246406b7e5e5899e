# ADE20K (150 classes) in mmseg's layout under data/ade/ADEChallengeData2016
# (`--cfg-options data_root=...` points elsewhere), 512x512 crops, four
# loader workers, whole-image evaluation one image at a time.
_base_ = ['mmseg::_base_/datasets/ade20k.py']
data_root = 'data/ade/ADEChallengeData2016'
train_dataloader = dict(num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader
