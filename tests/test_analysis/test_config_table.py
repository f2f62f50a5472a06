"""The README's config zoo table is what tools/analysis/config_table.py generates from configs/."""
import os.path as osp
import re

import pytest

from gfnet_seg.analysis.config_table import (COUNTED_COLUMNS, MARKERS, config_rows, describe, find_configs,
                                             markdown_table, split_cells, table_between_markers)

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
