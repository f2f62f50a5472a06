"""File helpers shared by segmentation and classification (no mmseg here).

* Atomic writes: a run killed in the middle of saving leaves the previous file intact, and a
  write that fails (a full disk, an I/O error) raises ``WriteError`` naming the file, with no
  temporary file left behind. A kill leaves its temporary file (``.NAME.XXXXXXXX.tmp``), which
  ``remove_temporary_files`` clears on the next start in that folder.
* ``checkpoint_problem``: whether a checkpoint file is complete, without unpickling it.
* ``first_problem``: read many data files side by side before training, stopping at the first bad one.
"""
import contextlib
import csv
import io
import json
import os
import re
import stat
import struct
import sys
import tempfile
import zipfile
from multiprocessing.pool import ThreadPool
from typing import Callable, Iterable, List, Sequence, Tuple, Type, TypeVar

import torch
from tqdm import tqdm

Item = TypeVar('Item')
# The weights file of a folder in timm's Hugging Face layout, as gfnet_seg.models.checkpoint reads it.
HF_WEIGHTS_FILES = ('model.safetensors', 'pytorch_model.bin')
# tempfile.mkstemp's names as atomic_write_bytes asks for them: '.' + target name + '.' + 8 characters.
_TEMPORARY_NAME = re.compile(r'^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$')


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import (setting and restoring it later could race with a thread creating a file).
_UMASK = _umask()


class WriteError(OSError):
    """A file could not be written (disk full, I/O error, no permission); the message names it."""


class IncompleteFileError(ValueError):
    """A checkpoint file is truncated or corrupt (a copy or a save that did not finish)."""


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The rename is atomic on POSIX file systems, so readers see either the old or the new file,
    never a truncated one. An ``OSError`` on the way (ENOSPC, EIO, ...) removes the temporary
    file and raises ``WriteError`` naming ``path``; the old file is untouched. The file gets the
    permissions of the file it replaces, or those ``open`` gives a new file (0666 less the
    umask), not the owner-only 0600 of ``mkstemp``: a checkpoint is for the team to read.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp_path = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as err:
        if tmp_path is not None and os.path.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            error = WriteError(f'cannot write {path}: {err.strerror or err}')
            error.errno = err.errno
            raise error from None
        raise


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` through ``atomic_write_bytes``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_csv(path: str, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """``rows`` as CSV under a header of ``columns`` (other keys left out), through ``atomic_write_bytes``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())


def remove_temporary_files(folder: str) -> List[str]:
    """Remove the temporary files that saves killed halfway left in ``folder``; returns their names.

    Call it when a run starts, before it writes anything there: a temporary file of a save in
    progress (another process writing into the same folder) would go too.
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file() and _TEMPORARY_NAME.match(entry.name):
            os.remove(entry.path)
            removed.append(entry.name)
    return removed


def checkpoint_problem(path: str) -> str:
    """What makes the file at ``path`` an incomplete checkpoint, or '' when it is whole.

    ``torch.save`` writes a zip archive whose directory sits at its end and which holds a CRC of
    every member: a file cut short has no directory, a damaged one fails a CRC. Nothing is
    unpickled. Files in torch's legacy (pre-1.6, not zip) format cannot be checked and pass.
    """
    if os.path.isdir(path):  # timm's Hugging Face layout (save_for_hf)
        found = [os.path.join(path, name) for name in HF_WEIGHTS_FILES if os.path.isfile(os.path.join(path, name))]
        if not found:
            return f'is a folder without {" or ".join(HF_WEIGHTS_FILES)}'
        path = found[0]
    if not os.path.isfile(path):
        return 'does not exist'
    size = os.path.getsize(path)
    if size == 0:
        return 'is empty (0 bytes): it was never written completely'
    with open(path, 'rb') as f:
        head = f.read(9)
    if path.endswith('.safetensors') or head[8:] == b'{':
        return _safetensors_problem(path, size)
    if not zipfile.is_zipfile(path):
        with open(path, 'rb') as f:
            legacy = f.read(1) == b'\x80'  # a pickle protocol header
        return '' if legacy else (f'is truncated ({size} bytes, its end is missing) or not a PyTorch '
                                  'checkpoint: it was not written completely')
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'is corrupt ({err})'
    return f'is corrupt (member {bad_member} fails its CRC check)' if bad_member else ''


def _safetensors_problem(path: str, size: int) -> str:
    """What makes a safetensors file incomplete, or '': an 8-byte header length, the JSON header,
    then the tensors' bytes, which must end where the header's last data offset says."""
    truncated = f'is truncated ({size} bytes, its end is missing): it was not written completely'
    with open(path, 'rb') as f:
        head = f.read(8)
        if len(head) < 8:
            return truncated
        length = struct.unpack('<Q', head)[0]
        if 8 + length > size:
            return truncated
        try:
            header = json.loads(f.read(length))
        except ValueError:
            return 'is corrupt (its safetensors header is not JSON)'
    end = max((entry['data_offsets'][1] for key, entry in header.items() if key != '__metadata__'), default=0)
    return '' if 8 + length + end == size else truncated


def check_checkpoint(path: str) -> None:
    """Raise ``IncompleteFileError`` (``FileNotFoundError`` when missing) for an incomplete checkpoint."""
    problem = checkpoint_problem(path)
    if problem == 'does not exist':
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if problem:
        raise IncompleteFileError(f'checkpoint {path} {problem}')


@contextlib.contextmanager
def exit_on_error(errors: Tuple[Type[BaseException], ...]):
    """For the tools: ``errors`` (mistakes in the input, a full disk) end the process with
    ``error: <what is wrong>`` on one line and exit code 1, not a traceback."""
    try:
        yield
    except errors as err:
        print(f'error: {err}', file=sys.stderr)
        raise SystemExit(1) from None


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
