"""What every picture of the analysis tools does: matplotlib without a display, and saving."""
import io
import os

from ..fileio import atomic_write_bytes


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend: files only, no display needed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str, title: str = '') -> None:
    """Title, tight layout, write to ``path`` (folders created; atomically, in the format its
    extension names), close."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(path)[1][1:] or 'png', dpi=120)
    pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
