"""Compatibility layer between mmseg 1.2.2, mmcv-lite and recent torch.

Four narrow fixes, all installed by ``gfnet_seg/__init__.py`` before anything imports mmseg:

* ``install_mmcv_ops_fallback``: mmseg imports ``point_sample`` and ``sigmoid_focal_loss`` from
  ``mmcv.ops`` without a guard, but mmcv-lite ships no compiled ops, so ``import mmseg.models``
  fails. When (and only when) the compiled ops are absent, ``mmcv.ops`` becomes a small module
  with pure-PyTorch versions of those two; every other name raises ``ModuleNotFoundError``,
  which is what mmseg catches around its optional ops (PSAMask, CrissCrossAttention, ...).
* ``allow_mmengine_checkpoint_types``: torch >= 2.6 loads with ``weights_only=True`` by default,
  and mmengine 0.10.7 checkpoints hold a few plain data types (its ``HistoryBuffer``, numpy
  arrays and scalars) that the safe unpickler refuses, so ``--resume`` fails. We allow-list
  exactly those types; the safety stays on for every file.
* ``install_package_lookup_fallback``: mmengine resolves ``mmseg::`` config bases with
  ``pkg_resources``, which setuptools >= 81 no longer ships (and venvs of Python >= 3.12 lack
  setuptools altogether). Where it is missing, mmengine's two look-ups use ``importlib`` instead.
* ``dump_test_metrics_once``: mmengine 0.10.7's ``LoggerHook`` writes the test metrics
  (``<log_dir>/<timestamp>.json``) from every process of a distributed test, all to the same file;
  two processes writing it at once leave invalid JSON (seen with ``dist_test.sh``). The main
  process alone writes it now, atomically.
"""
import importlib.metadata
import importlib.util
import os.path as osp
import pickle
import sys
import types

import torch
import torch.nn.functional as F

# Names mmseg (and mmengine) import from mmcv.ops that we provide in pure PyTorch.
PROVIDED_OPS = ('point_sample', 'sigmoid_focal_loss')


def compiled_mmcv_ops_available() -> bool:
    """True when mmcv's compiled extension (full mmcv) is importable."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def point_sample(input, points, align_corners=False, **kwargs):
    """``mmcv.ops.point_sample``: sample ``input`` (N, C, H, W) at points in [0, 1]^2.

    ``points`` is (N, P, 2) or (N, Hgrid, Wgrid, 2), x before y, as in mmcv.
    """
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)
    output = F.grid_sample(input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    return output.squeeze(3) if add_dim else output


def sigmoid_focal_loss(input, target, gamma=2.0, alpha=0.25, weight=None, reduction='mean'):
    """``mmcv.ops.sigmoid_focal_loss``: ``input`` (N, C) logits, ``target`` (N,) class indices.

    A target equal to C means background (no positive class). ``weight`` is indexed by each
    row's target and scales the whole row, as in mmcv's kernel; 'mean' divides the summed loss
    by N, as mmcv does.
    """
    num_classes = input.size(1)
    one_hot = F.one_hot(target.clamp(max=num_classes), num_classes + 1)[:, :num_classes]
    one_hot = one_hot.to(input.dtype)
    prob = input.sigmoid()
    # log(p) and log(1 - p) from logits, stable for large |input|.
    log_p, log_not_p = F.logsigmoid(input), F.logsigmoid(-input)
    loss = -(alpha * one_hot * (1 - prob).pow(gamma) * log_p
             + (1 - alpha) * (1 - one_hot) * prob.pow(gamma) * log_not_p)
    if weight is not None:
        loss = loss * weight[target].unsqueeze(1)
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


def _missing_op(name):
    raise ModuleNotFoundError(
        f"mmcv.ops.{name} needs mmcv's compiled ops, which mmcv-lite does not ship; "
        'gfnet_seg provides only ' + ', '.join(PROVIDED_OPS), name=f'mmcv.ops.{name}')


def install_mmcv_ops_fallback() -> bool:
    """Install the pure-PyTorch ``mmcv.ops`` if compiled ops are absent. Returns True if installed."""
    if compiled_mmcv_ops_available() or isinstance(sys.modules.get('mmcv.ops'), _FallbackOps):
        return False
    module = _FallbackOps('mmcv.ops', __doc__)
    module.point_sample = point_sample
    module.sigmoid_focal_loss = sigmoid_focal_loss
    sys.modules['mmcv.ops'] = module
    import mmcv
    mmcv.ops = module
    return True


class _FallbackOps(types.ModuleType):
    """``mmcv.ops`` stand-in: provided ops as attributes, ModuleNotFoundError for the rest."""

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        _missing_op(name)


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list the data types mmengine puts in its checkpoints for ``weights_only`` loading."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    numpy_core = np._core if hasattr(np, '_core') else np.core
    safe = [
        HistoryBuffer,
        numpy_core.multiarray._reconstruct,
        numpy_core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        # HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'mean'): the
        # stand-in resolves exactly those and nothing else.
        (_history_buffer_method, 'builtins.getattr'),
    ]
    # numpy >= 1.25 pickles dtypes by their class (np.dtypes.Float64DType, ...).
    if hasattr(np, 'dtypes'):
        safe += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith('DType')]
    torch.serialization.add_safe_globals(safe)


def _history_buffer_method(owner, name):
    """``getattr`` as the safe unpickler sees it: only HistoryBuffer's public statistics methods."""
    from mmengine.logging.history_buffer import HistoryBuffer

    method = getattr(HistoryBuffer, name, None) if owner is HistoryBuffer and not name.startswith('_') else None
    if not callable(method):
        raise pickle.UnpicklingError(f'checkpoint asks for getattr({owner!r}, {name!r}), which is not allowed')
    return method


def _module_dir(package: str):
    """Folder of the module that ``package`` (a module or distribution name) installs, or None."""
    names = [package]
    try:
        top_level = importlib.metadata.distribution(package).read_text('top_level.txt')
        names += top_level.split() if top_level else []
    except importlib.metadata.PackageNotFoundError:
        pass
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            return osp.dirname(spec.origin)
    return None


def is_installed(package: str) -> bool:
    """``mmengine.utils.is_installed`` without ``pkg_resources``."""
    return _module_dir(package) is not None


def get_installed_path(package: str) -> str:
    """``mmengine.utils.get_installed_path`` without ``pkg_resources``."""
    path = _module_dir(package)
    if path is None:
        raise ModuleNotFoundError(f'{package} is not installed', name=package)
    return path


def install_package_lookup_fallback() -> bool:
    """Give mmengine importlib-based package look-ups if ``pkg_resources`` is absent. True if installed."""
    if importlib.util.find_spec('pkg_resources') is not None:
        return False
    import mmengine.config.config
    import mmengine.utils
    import mmengine.utils.package_utils
    for module in (mmengine.utils, mmengine.utils.package_utils, mmengine.config.config):
        module.is_installed = is_installed
        module.get_installed_path = get_installed_path
    return True


def _after_test_epoch(self, runner, metrics=None) -> None:
    """``LoggerHook.after_test_epoch`` with one writer: every process logs the metrics, the main
    process writes them to ``<log_dir>/<timestamp>.json`` (temporary file, then rename)."""
    from mmengine.dist import is_main_process
    from mmengine.fileio import dump

    from .fileio import atomic_write_bytes
    tag, log_str = runner.log_processor.get_log_after_epoch(
        runner, len(runner.test_dataloader), 'test', with_non_scalar=True)
    runner.logger.info(log_str)
    if is_main_process():
        text = dump(self._process_tags(tag), file_format='json')
        atomic_write_bytes(osp.join(runner.log_dir, self.json_log_path), text.encode())


def dump_test_metrics_once() -> None:
    """Give mmengine's ``LoggerHook`` the single-writer ``after_test_epoch``."""
    from mmengine.hooks import LoggerHook
    LoggerHook.after_test_epoch = _after_test_epoch


def install() -> None:
    """All four fixes; idempotent. Called by ``import gfnet_seg``."""
    install_mmcv_ops_fallback()
    allow_mmengine_checkpoint_types()
    install_package_lookup_fallback()
    dump_test_metrics_once()
