#!/usr/bin/env python
"""Transfer learning on the shapes: pretrain the EfficientViT-M0 classifier
on shape crops, fine-tune RetinaNet-M0 on shapes scenes from its
checkpoint, train the same detector from scratch, compare the mAPs.

    python tools/transfer_demo.py [--epochs 4] [--threads 1]

The steps live in ``efficientvit_mm/demo/transfer.py``; the walkthrough and
its figures are in docs/transfer_learning.md.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not

if __name__ == '__main__':
    from efficientvit_mm.demo.transfer import transfer_demo_main
    sys.exit(transfer_demo_main())
