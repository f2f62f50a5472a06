"""Figures are written in the format their file name asks for, whole or not at all."""
import os

import pytest

from gfnet_seg.analysis.plotting import pyplot, save_figure


@pytest.mark.parametrize('name, magic', [('f.png', b'\x89PNG'), ('f.pdf', b'%PDF'), ('f.svg', b'<?xml')])
def test_figure_format_follows_the_extension(tmp_path, name, magic):
    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    path = tmp_path / 'sub' / name
    save_figure(fig, str(path), 'title')
    assert path.read_bytes().startswith(magic)
    assert os.listdir(path.parent) == [name]  # no temporary file left
