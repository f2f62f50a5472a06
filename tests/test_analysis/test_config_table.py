"""The README's config zoo table is what tools/analysis/config_table.py generates from configs/."""
import math
import os.path as osp
import re

import pytest

from gfnet_seg.analysis.config_table import (COUNTED_COLUMNS, MARKERS, build_detector, config_rows, count_detector,
                                             describe, describe_detection, find_configs, markdown_table, read_config,
                                             split_cells, table_between_markers)
from gfnet_seg.analysis.flops import count_complexity

REGENERATE = 'python tools/analysis/config_table.py --update README.md'
# The config whose FLOPs are recounted: the cheapest forward pass (128x128).
CHEAP_CONFIG = 'sem_fpn/fpn_gfnet-h-ti_1xb2-300_synthetic-128x128.py'


@pytest.fixture(scope='module')
def readme_rows(repo_root):
    with open(osp.join(repo_root, 'README.md'), encoding='utf-8') as file:
        return split_cells(table_between_markers(file.read()))


FLOPS, FFT_SHARE = COUNTED_COLUMNS


def not_counted(rows):
    """The cells that need no forward pass."""
    return [[cell for i, cell in enumerate(row) if i not in COUNTED_COLUMNS] for row in rows]


def test_readme_table_is_the_generated_one(repo_root, readme_rows):
    """Every cell but the FLOPs and FFT shares, regenerated: parameters are counted on models built
    on the meta device (seconds for all configs); FLOPs need a forward pass at each crop (minutes),
    so one row's are recounted below. Every GFNet row must count its FFTs."""
    config_dir = osp.join(repo_root, 'configs')
    generated = split_cells(markdown_table(config_rows(config_dir, count_flops=False, progress=False)))
    assert not_counted(readme_rows) == not_counted(generated), f'README out of date: {REGENERATE}'
    assert all(re.fullmatch(r'\d+\.\d\dG', row[FLOPS]) for row in readme_rows[2:]), readme_rows
    gfnet_shares = [float(row[FFT_SHARE].rstrip('%')) for row in readme_rows[2:] if row[2].startswith('GFNet')]
    assert len(gfnet_shares) == len(find_configs(config_dir)) and min(gfnet_shares) > 0, \
        f'FFTs not counted: {REGENERATE}'


def test_readme_row_with_flops_recounted(repo_root, readme_rows):
    """One row regenerated with its FLOPs (and parameters of a model built for real, not on the
    meta device)."""
    row = describe(osp.join(repo_root, 'configs', CHEAP_CONFIG), CHEAP_CONFIG, count_flops=True)
    readme_row, = (r for r in readme_rows if r[0] == f'`{CHEAP_CONFIG}`')
    assert readme_row == row.cells(), f'README out of date: {REGENERATE}'


def test_tool_updates_only_the_table(tool, tmp_path, repo_root, capsys):
    readme = tmp_path / 'README.md'
    before, after = '# Title\n\ntext before\n', '\ntext after\n'
    readme.write_text(f'{before}{MARKERS[0]}\nold table\n{MARKERS[1]}{after}', encoding='utf-8')
    tool('config_table')(['--configs', osp.join(repo_root, 'configs', 'upernet'), '--no-flops', '--no-reference',
                          '--update', str(readme)])
    printed = capsys.readouterr().out
    text = readme.read_text(encoding='utf-8')
    assert text == f'{before}{MARKERS[0]}\n{printed}{MARKERS[1]}{after}'
    rows = split_cells(printed)
    assert [row[1] for row in rows[2:]] == ['UperNet'] * 6 and [row[FLOPS] for row in rows[2:]] == [''] * 6


@pytest.mark.parametrize('problem', ['no markers', 'no configs'])
def test_tool_names_what_is_wrong(tool, tmp_path, repo_root, capsys, problem):
    readme = tmp_path / 'README.md'
    readme.write_text('no table here\n', encoding='utf-8')
    config_dir = osp.join(repo_root, 'configs', 'upernet') if problem == 'no markers' else str(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        tool('config_table')(['--configs', config_dir, '--no-flops', '--no-reference', '--update', str(readme)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
    assert (str(readme) in err and MARKERS[0] in err) if problem == 'no markers' else str(tmp_path) in err
    assert readme.read_text(encoding='utf-8') == 'no table here\n'


# Detection: one table per detector folder, in that folder's README.
DETECTION_READMES = ('retinanet', 'mask_rcnn')
CHEAP_DETECTION_CONFIG = 'retinanet_gfnet-h-ti_fpn_1xb2-1x_synthetic-coco.py'


def detection_regenerate(folder):
    return (f'python tools/analysis/config_table.py --task detection --configs configs/{folder} '
            f'--update configs/{folder}/README.md')


def readme_table_rows(repo_root, folder):
    with open(osp.join(repo_root, 'configs', folder, 'README.md'), encoding='utf-8') as file:
        return split_cells(table_between_markers(file.read()))


def test_tasks_split_the_configs(repo_root):
    config_dir = osp.join(repo_root, 'configs')
    segmentation, detection = (find_configs(config_dir, task) for task in ('segmentation', 'detection'))
    assert segmentation and detection and not set(segmentation) & set(detection)
    assert all(osp.basename(osp.dirname(p)) in DETECTION_READMES for p in detection)
    assert find_configs(osp.join(config_dir, 'retinanet'), 'detection') == \
        [p for p in detection if '/retinanet/' in p]


@pytest.mark.parametrize('folder', DETECTION_READMES)
def test_detection_readme_table_is_the_generated_one(repo_root, folder):
    """Every cell but the FLOPs and FFT shares regenerated (parameters on the meta device), the
    references (mmdet's Swin-T and PVTv2-b2 in the same detector) included; every GFNet row counts its FFTs."""
    readme_rows = readme_table_rows(repo_root, folder)
    generated = split_cells(markdown_table(config_rows(osp.join(repo_root, 'configs', folder), count_flops=False,
                                                       progress=False, task='detection')))
    assert not_counted(readme_rows) == not_counted(generated), f'README out of date: {detection_regenerate(folder)}'
    assert all(re.fullmatch(r'\d+\.\d\dG', row[FLOPS]) for row in readme_rows[2:]), readme_rows
    shares = [float(row[FFT_SHARE].rstrip('%')) for row in readme_rows[2:] if row[2].startswith('GFNet')]
    assert len(shares) == len(find_configs(osp.join(repo_root, 'configs', folder), 'detection')) and min(shares) > 0
    assert any(row[2] == 'Swin-T' for row in readme_rows[2:])


def test_detection_readme_row_with_flops_recounted(repo_root):
    """The cheapest detection row recounted with its FLOPs at 1280x800 (a model built for real)."""
    row = describe_detection(osp.join(repo_root, 'configs', 'retinanet', CHEAP_DETECTION_CONFIG),
                             CHEAP_DETECTION_CONFIG, count_flops=True)
    readme_row, = (r for r in readme_table_rows(repo_root, 'retinanet') if r[0] == f'`{CHEAP_DETECTION_CONFIG}`')
    assert readme_row == row.cells(), f"README out of date: {detection_regenerate('retinanet')}"


def global_filter_flops(arch, height, width):
    """The FFT FLOPs of the backbone by the GFNet paper's formula, HWD*ceil(log2(HW)) + HWD per block."""
    total, h, w = 0, height // 4, width // 4
    for dim, depth in zip(arch['embed_dims'], arch['depths']):
        total += depth * (h * w * dim * math.ceil(math.log2(h * w)) + h * w * dim)
        h, w = h // 2, w // 2
    return total


@pytest.mark.parametrize('config', ['retinanet/' + CHEAP_DETECTION_CONFIG,
                                    'mask_rcnn/mask-rcnn_gfnet-h-ti_fpn_1xb2-1x_synthetic-coco.py'])
def test_detector_counts(repo_root, config):
    """At a small input: the parameters are the detector's own, FLOPs are counted through the whole
    test-time forward (the heads too), and the FFTs are exactly the paper's formula for each block.
    A narrower, shallower backbone than the config's, for speed."""
    cfg = read_config(osp.join(repo_root, 'configs', config))
    arch = dict(embed_dims=(16, 32, 48, 64), depths=(1, 2, 1, 1), layer_scale_init=1e-3)
    cfg.model.backbone.arch = arch
    cfg.model.neck.in_channels = [arch['embed_dims'][i] for i in cfg.model.backbone.out_indices]
    height, width = 160, 224
    counts = count_detector(cfg, (height, width))
    detector = build_detector(cfg)
    assert counts.params == sum(p.numel() for p in detector.parameters())
    assert counts.fft_flops == global_filter_flops(arch, height, width) > 0
    backbone, = count_complexity(detector.backbone, (height, width))
    assert counts.flops > backbone.flops > counts.fft_flops > 0  # neck and heads counted


def test_tool_writes_a_detection_table(tool, tmp_path, repo_root, capsys):
    readme = tmp_path / 'README.md'
    readme.write_text(f'# RetinaNet\n{MARKERS[0]}\nold\n{MARKERS[1]}\n', encoding='utf-8')
    tool('config_table')(['--task', 'detection', '--configs', osp.join(repo_root, 'configs', 'retinanet'),
                          '--no-flops', '--no-reference', '--update', str(readme)])
    rows = split_cells(capsys.readouterr().out)
    assert rows[0][:3] == ['config', 'detector', 'backbone'] and len(rows) == 2 + 4
    assert {row[1] for row in rows[2:]} == {'RetinaNet'} and [row[FLOPS] for row in rows[2:]] == [''] * 4
    assert readme.read_text(encoding='utf-8').count('RetinaNet') == 1 + 4
