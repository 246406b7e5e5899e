"""Two-stage detectors (Mask R-CNN) in ONNX with mmdet's own proposals.

mmdeploy 1.3.1's default rewrites of the two stages compute something
other than mmdet, so an exported Mask R-CNN keeps other detections than
the PyTorch model it came from, even where both runtimes agree:

* its RPN suppresses boxes across pyramid levels, where mmdet runs NMS
  level by level (``batched_nms`` over level ids);
* it keeps boxes of no area, which mmdet drops (``min_bbox_size``);
* it drops proposals scored below the second stage's ``score_thr``, which
  mmdet's RPN does not have;
* an image with fewer proposals than ``max_per_img`` gets zero boxes as
  padding (in a batch), and the second stage turns them into detections;
* its second stage keeps, for each RoI, the box of the best class only and
  gives it to every class, where mmdet gives each class its own box.

:func:`apply` registers onnxruntime rewrites that follow mmdet instead:
:func:`rpn_proposals`, :func:`predict_bbox_of_real_proposals` and
:func:`class_boxes_nms`. Each pyramid level is one "class" of the batched
ONNX NMS, so levels are suppressed separately. A proposal scored at or
below ``SCORE_FLOOR`` (a sigmoid of a logit below -87) is dropped, where
mmdet would keep it. The second stage runs one NMS over every (RoI, class)
box, classes kept apart by offsets, as mmdet's ``batched_nms`` does.
"""
import torch

__all__ = [
    'SCORE_FLOOR', 'apply', 'class_boxes_nms',
    'predict_bbox_of_real_proposals', 'rpn_proposals'
]

# proposals must score above this: the smallest normal fp32 number, so that
# the zeros of removed boxes (and of other levels' columns) never pass
SCORE_FLOOR = float(torch.finfo(torch.float32).tiny)
# the logit that gives a padding RoI no foreground score after softmax
_NO_SCORE = -1e4


def rpn_proposals(self, cls_scores, bbox_preds, score_factors=None,
                  batch_img_metas=None, cfg=None, rescale=False, with_nms=True,
                  **kwargs):
    """``RPNHead.predict_by_feat`` for export: per level the top
    ``nms_pre`` anchors by objectness, decoded and clipped; boxes not wider
    and taller than ``min_bbox_size`` removed; NMS within each level; the
    best ``max_per_img`` kept. Returns ``(dets, levels)``: (N, K, 5) boxes
    and scores, best first, zero rows where an image has fewer than K, and
    the level of each."""
    from mmdeploy.codebase.mmdet.deploy import gather_topk
    from mmdeploy.mmcv.ops import multiclass_nms
    cfg = self.test_cfg if cfg is None else cfg
    n = cls_scores[0].shape[0]
    priors = self.prior_generator.grid_priors(
        [s.shape[-2:] for s in cls_scores], device=cls_scores[0].device)
    nms_pre = cfg.get('nms_pre', -1)
    all_scores, all_deltas, all_priors, all_levels = [], [], [], []
    for level, (score, delta,
                prior) in enumerate(zip(cls_scores, bbox_preds, priors)):
        score = score.permute(0, 2, 3, 1).reshape(n, -1)
        if self.use_sigmoid_cls:
            score = score.sigmoid()
        else:  # (fg, bg) pairs
            score = score.reshape(n, -1, 2).softmax(-1)[..., 0]
        score = score.unsqueeze(-1)  # (N, A, 1)
        delta = delta.permute(0, 2, 3, 1).reshape(n, -1, 4)
        prior = prior.unsqueeze(0)
        if nms_pre > 0:  # (mmdeploy's topk takes min(k, anchors))
            _, top = score.squeeze(-1).topk(nms_pre)
            delta, score = gather_topk(delta, score, inds=top, batch_size=n,
                                       is_batched=True)
            prior = gather_topk(prior, inds=top, batch_size=n,
                                is_batched=False)
        all_scores.append(score)
        all_deltas.append(delta)
        all_priors.append(prior.expand(n, -1, -1))
        all_levels.append(torch.full_like(score, level))
    scores = torch.cat(all_scores, 1)
    levels = torch.cat(all_levels, 1)
    boxes = self.bbox_coder.decode(
        torch.cat(all_priors, 1), torch.cat(all_deltas, 1),
        max_shape=batch_img_metas[0]['img_shape'])
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:
        wide = (boxes[..., 2] - boxes[..., 0] > min_size)
        tall = (boxes[..., 3] - boxes[..., 1] > min_size)
        scores = scores * (wide & tall).unsqueeze(-1).to(scores.dtype)
    # (N, boxes, levels): a box scores only in its own level's column
    by_level = scores * (levels == torch.arange(
        len(cls_scores), device=scores.device).to(levels.dtype)).to(
            scores.dtype)
    keep = cfg.max_per_img
    return multiclass_nms(boxes, by_level, max_output_boxes_per_class=keep,
                          iou_threshold=cfg.nms.get('iou_threshold', 0.7),
                          score_threshold=SCORE_FLOOR, pre_top_k=-1,
                          keep_top_k=keep, nms_type=cfg.nms.get('type'))


def predict_bbox_of_real_proposals(self, x, batch_img_metas, rpn_results_list,
                                   rcnn_test_cfg, rescale=False):
    """``StandardRoIHead.predict_bbox`` for export: the second stage on the
    (N, K, 5) proposals of :func:`rpn_proposals`, where the zero rows that
    pad an image's proposals to K get no foreground score, hence no
    detection (mmdet has no such rows)."""
    proposals = rpn_results_list[0]
    n, k = proposals.shape[:2]
    index = torch.arange(n, device=proposals.device).to(proposals.dtype).view(
        -1, 1, 1).expand(n, k, 1)
    rois = torch.cat([index, proposals[..., :4]], -1)
    out = self._bbox_forward(x, rois.reshape(-1, 5))
    cls_scores = out['cls_score'].reshape(n, k, -1)
    fill = [_NO_SCORE] * cls_scores.shape[-1]
    if not self.bbox_head.custom_cls_channels:
        fill[-1] = 0.  # softmax: all on the background column
    real = (proposals[..., 4:5] > 0)
    cls_scores = torch.where(real, cls_scores, cls_scores.new_tensor(fill))
    return self.bbox_head.predict_by_feat(
        rois=rois, cls_scores=cls_scores,
        bbox_preds=out['bbox_pred'].reshape(n, k, -1),
        batch_img_metas=batch_img_metas, rcnn_test_cfg=rcnn_test_cfg,
        rescale=rescale)


def class_boxes_nms(self, rois, cls_scores, bbox_preds, batch_img_metas,
                    rcnn_test_cfg, rescale=False):
    """``BBoxHead.predict_by_feat`` for export, as mmdet computes it: every
    (RoI, class) pair scoring above ``score_thr`` with the class's own
    decoded box, NMS within each class, the best ``max_per_img`` kept.

    ``rois`` (N, K, 5), ``cls_scores`` (N, K, C + 1), ``bbox_preds``
    (N, K, 4C, or 4 if class-agnostic) -> ``dets`` (N, max_per_img, 5),
    zero rows where an image has fewer, and ``labels`` (N, max_per_img).
    """
    from mmdeploy.mmcv.ops.nms import ONNXNMSop, _select_nms_index
    scores = self.loss_cls.get_activation(cls_scores) \
        if self.custom_cls_channels else cls_scores.softmax(-1)
    n, k = rois.shape[:2]
    c = self.num_classes
    scores = scores[..., :c]  # (N, K, C), background dropped
    boxes = self.bbox_coder.decode(rois[..., 1:], bbox_preds,
                                   max_shape=batch_img_metas[0]['img_shape'])
    boxes = boxes.reshape(n, k, -1, 4).expand(n, k, c, 4).reshape(n, k * c, 4)
    scores = scores.reshape(n, 1, k * c)
    labels = torch.arange(c, device=scores.device).repeat(k)  # (K * C, )
    thr = rcnn_test_cfg.get('score_thr', 0.05)
    # mmdet's batched_nms: classes apart by (largest coordinate + 1)
    passing = (scores.transpose(1, 2) > thr).to(boxes.dtype)
    reach = (boxes * passing).amax(dim=(1, 2), keepdim=True) + 1
    shifted = boxes + labels.to(boxes.dtype).view(1, -1, 1) * reach
    keep = rcnn_test_cfg.get('max_per_img', 100)
    selected = ONNXNMSop.apply(shifted, scores, keep,
                               torch.tensor([rcnn_test_cfg.nms.iou_threshold]),
                               torch.tensor([thr]))
    pair = torch.arange(k * c, device=scores.device).expand(n, -1)
    # (its labels are the NMS class, 0, and -1 on other images' rows)
    dets, nms_labels, index = _select_nms_index(scores, boxes, selected, n,
                                                keep_top_k=keep, pre_inds=pair,
                                                output_index=True)
    labels = torch.where(nms_labels >= 0, index.remainder(c), nms_labels)
    return dets, labels


def apply() -> None:
    """Register the rewrites for the onnxruntime backend (they take
    precedence over mmdeploy's default ones there)."""
    from mmdeploy.core import FUNCTION_REWRITER
    FUNCTION_REWRITER.register_rewriter(
        'mmdet.models.dense_heads.rpn_head.RPNHead.predict_by_feat',
        backend='onnxruntime')(
            rpn_proposals)
    FUNCTION_REWRITER.register_rewriter(
        'mmdet.models.roi_heads.standard_roi_head.StandardRoIHead.'
        'predict_bbox', backend='onnxruntime')(
            predict_bbox_of_real_proposals)
    FUNCTION_REWRITER.register_rewriter(
        'mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.'
        'predict_by_feat', backend='onnxruntime')(
            class_boxes_nms)
