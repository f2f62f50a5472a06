"""File helpers shared by segmentation and classification (no mmseg here).

* Atomic writes: a run killed in the middle of saving leaves the previous file intact.
* ``first_problem``: read many data files side by side before training, stopping at the first bad one.
"""
import io
import os
import tempfile
from multiprocessing.pool import ThreadPool
from typing import Callable, Sequence, TypeVar

import torch
from tqdm import tqdm

Item = TypeVar('Item')


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The rename is atomic on POSIX file systems, so readers see either the old or the new file,
    never a truncated one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` through ``atomic_write_bytes``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def first_problem(check: Callable[[Item], str], items: Sequence[Item], desc: str, workers: int = 8,
                  progress: bool = True) -> str:
    """The first non-empty result of ``check`` over ``items``, in order, or '' when all are sound.

    Threads read the files side by side (decoding releases the GIL) behind a progress bar; the
    pool is terminated at the first problem, so a bad file is reported at once, not after the
    rest of a large data set has been read.
    """
    with ThreadPool(max(1, workers)) as pool:
        results = pool.imap(check, items, chunksize=16)
        for problem in tqdm(results, total=len(items), desc=desc, unit='img', disable=not progress):
            if problem:
                return problem
    return ''
