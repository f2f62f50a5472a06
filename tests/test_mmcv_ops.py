"""The pure-PyTorch ``mmcv.ops`` of the mmcv-lite layer (gfnet_seg/mmcv_ops.py) against independent oracles.

Each op is compared with a reference written here in plain Python/NumPy from mmcv's own kernels
(``ops/csrc/pytorch/cpu/nms.cpp``, ``ops/csrc/pytorch/cpu/roi_align.cpp``,
``ops/csrc/common/cuda/roi_pool_cuda_kernel.cuh`` and ``ops/nms.py``'s ``batched_nms``); no oracle
calls torchvision or the code under test. The focal loss has its own test in test_compat.py.
"""
import math

import numpy as np
import pytest
import torch

from gfnet_seg import compat

pytestmark = pytest.mark.skipif(compat.compiled_mmcv_ops_available(),
                                reason="full mmcv's compiled ops are installed: mmcv.ops is mmcv's own")

import mmcv.ops  # noqa: E402  (after gfnet_seg: the layer's mmcv.ops)
from mmcv.ops import RoIAlign, RoIPool, batched_nms, nms, roi_align, roi_pool  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Oracles
def oracle_iou(a, b, offset):
    """IoU of two x1y1x2y2 boxes, widths ``x2 - x1 + offset`` (mmcv's nms_cpu)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
    inter = w * h
    area_a = (a[2] - a[0] + offset) * (a[3] - a[1] + offset)
    area_b = (b[2] - b[0] + offset) * (b[3] - b[1] + offset)
    return inter / (area_a + area_b - inter)


def oracle_nms(boxes, scores, iou_threshold, offset=0, score_threshold=0, max_num=-1):
    """Greedy NMS: indices kept, highest score first."""
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    order = [int(i) for i in np.argsort(-scores, kind='stable')
             if score_threshold <= 0 or scores[i] > score_threshold]
    keep = []
    for i in order:
        if all(oracle_iou(boxes[k], boxes[i], offset) <= iou_threshold for k in keep):
            keep.append(i)
    return keep[:max_num] if max_num > 0 else keep


def oracle_batched_nms(boxes, scores, idxs, iou_threshold, class_agnostic=False, max_num=-1):
    """NMS within each class (or over all boxes), the union sorted by score, highest first."""
    boxes, scores, idxs = (np.asarray(t) for t in (boxes, scores, idxs))
    if class_agnostic:
        keep = oracle_nms(boxes, scores, iou_threshold)
    else:
        keep = []
        for label in sorted(set(idxs.tolist())):
            members = np.flatnonzero(idxs == label)
            keep += [int(members[i]) for i in oracle_nms(boxes[members], scores[members], iou_threshold)]
        keep.sort(key=lambda i: -scores[i])
    return keep[:max_num] if max_num > 0 else keep


def oracle_bilinear(fmap, y, x):
    """mmcv's/caffe2's bilinear_interpolate on a (C, H, W) map: 0 outside [-1, H] x [-1, W]."""
    _, height, width = fmap.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(fmap.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * fmap[:, y_low, x_low] + hy * lx * fmap[:, y_low, x_high]
            + ly * hx * fmap[:, y_high, x_low] + ly * lx * fmap[:, y_high, x_high])


def oracle_roi_align(feats, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """mmcv's roi_align_forward (pool_mode='avg') in NumPy: (K, C, PH, PW)."""
    feats = np.asarray(feats, dtype=np.float64)
    rois = np.asarray(rois, dtype=np.float64)
    ph_n, pw_n = output_size
    out = np.zeros((len(rois), feats.shape[1], ph_n, pw_n))
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        fmap = feats[int(b)]
        start_w, start_h = x1 * spatial_scale - offset, y1 * spatial_scale - offset
        roi_w = x2 * spatial_scale - offset - start_w
        roi_h = y2 * spatial_scale - offset - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / ph_n, roi_w / pw_n
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / ph_n)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pw_n)
        count = max(grid_h * grid_w, 1)
        for ph in range(ph_n):
            for pw in range(pw_n):
                total = np.zeros(feats.shape[1])
                for iy in range(grid_h):
                    y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        total += oracle_bilinear(fmap, y, x)
                out[k, :, ph, pw] = total / count
    return out


def oracle_roi_pool(feats, rois, output_size, spatial_scale):
    """mmcv's roi_pool_forward kernel (roi_pool_cuda_kernel.cuh; mmcv has no CPU one) in NumPy:
    the RoI spans x1 * scale to (x2 + 1) * scale, unrounded; bin [floor(start + i * bin),
    ceil(start + (i + 1) * bin)) clipped to the map; an empty bin or a RoI of size <= 0 gives 0."""
    feats = np.asarray(feats, dtype=np.float64)
    rois = np.asarray(rois, dtype=np.float64)
    ph_n, pw_n = output_size
    _, channels, height, width = feats.shape
    out = np.zeros((len(rois), channels, ph_n, pw_n))
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        rx1, ry1 = x1 * spatial_scale, y1 * spatial_scale
        roi_w, roi_h = (x2 + 1) * spatial_scale - rx1, (y2 + 1) * spatial_scale - ry1
        if roi_w <= 0 or roi_h <= 0:
            continue
        bin_w, bin_h = roi_w / pw_n, roi_h / ph_n
        for ph in range(ph_n):
            h0 = min(max(math.floor(ph * bin_h + ry1), 0), height)
            h1 = min(max(math.ceil((ph + 1) * bin_h + ry1), 0), height)
            for pw in range(pw_n):
                w0 = min(max(math.floor(pw * bin_w + rx1), 0), width)
                w1 = min(max(math.ceil((pw + 1) * bin_w + rx1), 0), width)
                if h1 > h0 and w1 > w0:
                    out[k, :, ph, pw] = feats[int(b), :, h0:h1, w0:w1].max(axis=(1, 2))
    return out


# ---------------------------------------------------------------------------------------------
# Data
def random_boxes(n=160, seed=0):
    """Boxes jittered around a dozen base boxes (many overlaps), 2 to 60 pixels wide (small enough
    for offset=1 to matter); distinct scores."""
    rng = np.random.default_rng(seed)
    base_centres = rng.uniform(20, 200, size=(12, 2))
    base_sizes = np.exp(rng.uniform(np.log(2), np.log(60), size=(12, 2)))
    group = rng.integers(0, 12, size=n)
    sizes = base_sizes[group] * np.exp(rng.normal(0, 0.15, size=(n, 2)))
    centres = base_centres[group] + rng.normal(0, 0.12, size=(n, 2)) * base_sizes[group]
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    scores = ((rng.permutation(n) + 1) / (n + 1)).astype(np.float32)
    return boxes, scores


def random_rois(n, image_hw, batch, seed, min_size=0.0):
    """(n, 5) RoIs in image pixels, some partly outside the image, one tiny (under a pixel of a
    stride-4 map), over ``batch`` images."""
    rng = np.random.default_rng(seed)
    img_h, img_w = image_hw
    x1 = rng.uniform(-0.2 * img_w, 0.9 * img_w, n)
    y1 = rng.uniform(-0.2 * img_h, 0.9 * img_h, n)
    w = rng.uniform(max(min_size, 2.0), 0.7 * img_w, n)
    h = rng.uniform(max(min_size, 2.0), 0.7 * img_h, n)
    w[0], h[0] = 1.5, 2.5  # tiny: aligned=False clamps it to 1 x 1 map pixel
    batch_idx = np.arange(n) % batch
    return np.stack([batch_idx, x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)


def test_mmcv_ops_is_the_layer():
    assert compat.mmcv_lite_ops_installed(), mmcv.ops.__file__


# ---------------------------------------------------------------------------------------------
# nms
@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('iou_threshold', [0.3, 0.5, 0.7])
def test_nms_matches_greedy_oracle(iou_threshold, offset):
    boxes, scores = random_boxes()
    expected = oracle_nms(boxes, scores, iou_threshold, offset)
    assert 1 < len(expected) < len(boxes)  # the data exercises suppression
    dets, keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou_threshold, offset=offset)
    assert isinstance(keep, torch.Tensor) and keep.dtype == torch.long
    assert keep.tolist() == expected
    assert dets.shape == (len(expected), 5)
    torch.testing.assert_close(dets[:, :4], torch.from_numpy(boxes[expected]))
    torch.testing.assert_close(dets[:, 4], torch.from_numpy(scores)[keep])
    assert (dets[1:, 4] <= dets[:-1, 4]).all()


def test_nms_offset_changes_the_result():
    """The data distinguishes offset=0 from offset=1 (else the offset test would be vacuous)."""
    boxes, scores = random_boxes()
    assert oracle_nms(boxes, scores, 0.5, 0) != oracle_nms(boxes, scores, 0.5, 1)


@pytest.mark.parametrize('score_threshold, max_num', [(0.4, -1), (0, 10), (0.3, 7)])
def test_nms_score_threshold_and_max_num(score_threshold, max_num):
    boxes, scores = random_boxes(seed=1)
    expected = oracle_nms(boxes, scores, 0.5, 0, score_threshold, max_num)
    dets, keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5,
                     score_threshold=score_threshold, max_num=max_num)
    assert keep.tolist() == expected
    torch.testing.assert_close(dets[:, 4], torch.from_numpy(scores[expected]))
    if max_num > 0:
        assert len(keep) == max_num
    if score_threshold > 0:
        assert (dets[:, 4] > score_threshold).all()


def test_nms_numpy_in_numpy_out():
    boxes, scores = random_boxes(seed=2)
    dets, keep = nms(boxes, scores, 0.5, offset=1)
    assert isinstance(dets, np.ndarray) and isinstance(keep, np.ndarray)
    assert keep.tolist() == oracle_nms(boxes, scores, 0.5, 1)
    np.testing.assert_array_equal(dets[:, 4], scores[keep])
    np.testing.assert_array_equal(dets[:, :4], boxes[keep])


def test_nms_empty_input():
    dets, keep = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert dets.shape == (0, 5) and keep.shape == (0,)
    dets, keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert isinstance(dets, np.ndarray) and dets.shape == (0, 5) and keep.shape == (0,)


# ---------------------------------------------------------------------------------------------
# batched_nms
def batched_data(seed=3, n=160, num_classes=4):
    boxes, scores = random_boxes(n, seed)
    idxs = np.random.default_rng(seed).integers(0, num_classes, size=n)
    return boxes, scores, idxs


@pytest.mark.parametrize('split_thr', [10000, 5], ids=['offset-path', 'per-class-loop'])
@pytest.mark.parametrize('max_num', [-1, 15])
def test_batched_nms_per_class(split_thr, max_num):
    boxes, scores, idxs = batched_data()
    expected = oracle_batched_nms(boxes, scores, idxs, 0.5, max_num=max_num)
    assert expected[:15] != oracle_batched_nms(boxes, scores, idxs, 0.5, class_agnostic=True)[:15]
    cfg = dict(type='nms', iou_threshold=0.5, split_thr=split_thr)
    if max_num > 0:
        cfg['max_num'] = max_num
    cfg_before = dict(cfg)
    dets, keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), cfg)
    assert cfg == cfg_before  # the caller's config is not consumed
    assert keep.tolist() == expected
    torch.testing.assert_close(dets[:, :4], torch.from_numpy(boxes[expected]))  # the boxes, not shifted
    torch.testing.assert_close(dets[:, 4], torch.from_numpy(scores[expected]))


@pytest.mark.parametrize('split_thr', [10000, 5], ids=['offset-path', 'per-class-loop'])
@pytest.mark.parametrize('via', ['cfg', 'argument'])
def test_batched_nms_class_agnostic(split_thr, via):
    boxes, scores, idxs = batched_data(seed=4)
    cfg = dict(type='nms', iou_threshold=0.5, split_thr=split_thr)
    if via == 'cfg':
        cfg['class_agnostic'] = True
    dets, keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), cfg,
                             class_agnostic=via == 'argument')
    if split_thr == 10000:
        # mmcv: class-agnostic boxes go through one NMS over all.
        assert keep.tolist() == oracle_batched_nms(boxes, scores, idxs, 0.5, class_agnostic=True)
    else:
        # mmcv's per-class loop still splits by idxs when class-agnostic (boxes only lose the shift).
        assert keep.tolist() == oracle_batched_nms(boxes, scores, idxs, 0.5)
    torch.testing.assert_close(dets[:, 4], torch.from_numpy(scores)[keep])


def test_batched_nms_without_cfg_sorts_all_boxes():
    boxes, scores, idxs = batched_data(seed=5)
    dets, keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), None)
    assert keep.tolist() == np.argsort(-scores, kind='stable').tolist()
    torch.testing.assert_close(dets, torch.from_numpy(np.concatenate([boxes, scores[:, None]], 1)[keep.numpy()]))


# ---------------------------------------------------------------------------------------------
# roi_align / RoIAlign
FEAT_HW = (16, 20)


@pytest.fixture(scope='module')
def feature_map():
    return torch.from_numpy(np.random.default_rng(6).standard_normal((3, 4, *FEAT_HW)).astype(np.float32))


@pytest.mark.parametrize('output_size', [(7, 7), (2, 3)], ids=['7x7', '2x3'])
@pytest.mark.parametrize('spatial_scale', [1 / 4, 1 / 8])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_matches_bilinear_oracle(feature_map, aligned, sampling_ratio, spatial_scale, output_size):
    image_hw = (FEAT_HW[0] / spatial_scale, FEAT_HW[1] / spatial_scale)
    rois = random_rois(6, image_hw, batch=3, seed=7)
    expected = oracle_roi_align(feature_map.numpy(), rois, output_size, spatial_scale, sampling_ratio, aligned)
    out = roi_align(feature_map, torch.from_numpy(rois), output_size, spatial_scale, sampling_ratio, 'avg', aligned)
    assert out.shape == (len(rois), feature_map.shape[1], *output_size)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)
    module = RoIAlign(output_size, spatial_scale, sampling_ratio, aligned=aligned)
    np.testing.assert_allclose(module(feature_map, torch.from_numpy(rois)).numpy(), expected, rtol=1e-4, atol=1e-5)
    # The two conventions differ on this data (the comparison pins `aligned` down).
    other = oracle_roi_align(feature_map.numpy(), rois, output_size, spatial_scale, sampling_ratio, not aligned)
    assert np.abs(other - expected).max() > 1e-2


def test_roi_align_int_output_size_and_gradient(feature_map):
    rois = random_rois(5, (64, 80), batch=3, seed=8)
    # Inside the map (sample points within [0, H-1] x [0, W-1]): the bilinear weights of each sample
    # sum to 1, so d(sum of outputs)/d(input) sums to the number of outputs.
    rois[:, 1:] = np.clip(rois[:, 1:], 4.0, 60.0)
    rois[:, 3:] = np.maximum(rois[:, 3:], rois[:, 1:3] + 4)
    feats = feature_map.clone().requires_grad_(True)
    out = roi_align(feats, torch.from_numpy(rois), 7, 1 / 4, 2, aligned=True)
    assert out.shape == (5, 4, 7, 7)
    np.testing.assert_allclose(out.detach().numpy(),
                               oracle_roi_align(feature_map.numpy(), rois, (7, 7), 1 / 4, 2, True),
                               rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    assert feats.grad.sum().item() == pytest.approx(out.numel(), rel=1e-4)
    assert (feats.grad[rois[:, 0].astype(int).max() + 1:] == 0).all()  # images without RoIs get none


def test_roi_align_max_pool_mode_raises_one_line(feature_map):
    for make in (lambda: roi_align(feature_map, torch.zeros(1, 5), 7, 1 / 4, 0, 'max', True),
                 lambda: RoIAlign(7, 1 / 4, 0, pool_mode='max')):
        with pytest.raises(NotImplementedError) as error:
            make()
        message = str(error.value)
        assert '\n' not in message and "pool_mode='max'" in message


# ---------------------------------------------------------------------------------------------
# roi_pool / RoIPool
def test_roi_pool_matches_mmcv_kernel_at_unit_scale(feature_map):
    """Whole-pixel RoIs at spatial_scale 1 (where mmcv's kernel and Fast R-CNN's rounded one agree),
    partly outside the map, several images."""
    rng = np.random.default_rng(9)
    x1 = rng.integers(-4, 18, 8)
    y1 = rng.integers(-4, 14, 8)
    rois = np.stack([np.arange(8) % 3, x1, y1, x1 + rng.integers(0, 12, 8), y1 + rng.integers(0, 10, 8)],
                    axis=1).astype(np.float32)
    for output_size in ((7, 7), (2, 3)):
        expected = oracle_roi_pool(feature_map.numpy(), rois, output_size, 1.0)
        out = roi_pool(feature_map, torch.from_numpy(rois), output_size, 1.0)
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=0)
        module = RoIPool(output_size, 1.0)
        np.testing.assert_allclose(module(feature_map, torch.from_numpy(rois)).numpy(), expected, rtol=0, atol=0)
    assert (expected == 0).any()  # bins outside the map are empty


@pytest.mark.parametrize('spatial_scale', [1 / 4, 1 / 8])
def test_roi_pool_matches_mmcv_kernel_at_feature_strides(feature_map, spatial_scale):
    image_hw = (FEAT_HW[0] / spatial_scale, FEAT_HW[1] / spatial_scale)
    rois = random_rois(6, image_hw, batch=3, seed=10, min_size=8 / spatial_scale)
    expected = oracle_roi_pool(feature_map.numpy(), rois, (7, 7), spatial_scale)
    out = roi_pool(feature_map, torch.from_numpy(rois), 7, spatial_scale)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# As mmdet uses them
def test_mmdet_single_roi_extractor_uses_our_roi_align():
    import mmdet.models  # noqa: F401  (registers the RoI extractors)
    from mmdet.registry import MODELS

    # _scope_: an earlier test may have left mmseg's scope as the default one
    extractor = MODELS.build(dict(type='SingleRoIExtractor', _scope_='mmdet', out_channels=8, featmap_strides=[4, 8],
                                  roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)))
    assert all(isinstance(layer, RoIAlign) for layer in extractor.roi_layers)
    rng = np.random.default_rng(11)
    feats = tuple(torch.from_numpy(rng.standard_normal((2, 8, 256 // s, 256 // s)).astype(np.float32))
                  for s in (4, 8))
    # mmdet's map_roi_levels: sqrt(area) < 2 * finest_scale (56) -> stride 4, else stride 8.
    small = [[0, 10, 20, 60, 90], [1, 100, 30, 180, 100], [1, -10, 200, 40, 270]]  # sqrt(area) < 112
    large = [[0, 20, 10, 200, 180], [1, 60, 40, 250, 250], [0, -30, 100, 150, 290]]  # sqrt(area) >= 112
    rois = np.array(small + large, dtype=np.float32)
    out = extractor(feats, torch.from_numpy(rois))
    assert out.shape == (6, 8, 7, 7)
    expected = np.concatenate([oracle_roi_align(feats[0].numpy(), rois[:3], (7, 7), 1 / 4, 0, True),
                               oracle_roi_align(feats[1].numpy(), rois[3:], (7, 7), 1 / 8, 0, True)])
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_mmdet_roi_extractor_keeps_the_boxes_in_float32_under_amp():
    """mmdet casts the RoIs to the features' dtype; under bfloat16 autocast (``--amp`` on a CPU) that
    moves box edges near x = 1100 by up to 4 pixels. The layer keeps them in float32: the extractor
    then gives float32's result on the same (bfloat16) features, up to bfloat16's rounding of its
    output, where mmdet's own forward (``__wrapped__``) samples elsewhere."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS

    extractor = MODELS.build(dict(type='SingleRoIExtractor', _scope_='mmdet', out_channels=8, featmap_strides=[8, 16],
                                  roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)))
    gen = torch.Generator().manual_seed(0)
    feats = tuple(torch.randn(1, 8, 800 // s, 1344 // s, generator=gen).bfloat16() for s in (8, 16))
    corner = torch.rand(24, 2, generator=gen) * torch.tensor([200., 300.]) + torch.tensor([1050., 300.])
    size = torch.rand(24, 1, generator=gen) * 150 + 30
    rois = torch.cat([torch.zeros(24, 1), corner, corner + size * torch.tensor([1., 0.8])], 1)
    expected = extractor(tuple(f.float() for f in feats), rois)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = extractor(feats, rois)
        unpatched = type(extractor).forward.__wrapped__(extractor, feats, rois)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, rtol=1e-2, atol=1e-2)
    assert (unpatched.float() - expected).abs().max() > 0.1

