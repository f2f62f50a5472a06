"""What every picture of the analysis tools does: matplotlib without a display, and saving."""
import os


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend: files only, no display needed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str, title: str = '') -> None:
    """Title, tight layout, write to ``path`` (folders created), close."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
