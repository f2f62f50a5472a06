"""The mmcv-lite layer: what mmseg 1.2.2 and mmdet 3.3.0 need of mmcv and mmengine on this stack.

It works for every program of an environment where gfnet-seg is installed, not only after
``import gfnet_seg``: the install puts ``gfnet_seg-mmcv-lite.pth`` into site-packages (setup.py),
whose one line loads this file (standard library only at import) and puts ``MMCVLiteFinder`` first in
``sys.meta_path``. The finder acts only when one of the modules below is imported, so a program
that never imports mmcv or mmengine pays a name comparison per import and nothing else;
``GFNET_SEG_MMCV_LITE=0`` in the environment turns it off. ``import gfnet_seg`` installs the same
finder where the ``.pth`` is absent (a source checkout on ``PYTHONPATH``).

* ``mmcv.ops``: mmseg and mmdet import it unguarded (mmdet as a package with submodules), but
  mmcv-lite ships no compiled ops. Where ``mmcv._ext`` is absent, ``mmcv.ops`` is
  ``gfnet_seg/mmcv_ops.py``: pure-PyTorch NMS, RoIAlign, RoIPool and focal loss, mmcv-lite's own
  uncompiled ops, and stand-ins that import and raise one line when used. With full mmcv the
  finder stands aside.
* ``mmengine.utils.package_utils``: mmengine resolves ``mmseg::``/``mmdet::`` config bases with
  ``pkg_resources``, which setuptools >= 81 no longer ships (and venvs of Python >= 3.12 lack
  setuptools altogether). Where it is missing, its two look-ups use ``importlib`` instead.
* ``mmengine.runner.checkpoint``: torch >= 2.6 loads with ``weights_only=True`` by default, and
  mmengine 0.10.7 checkpoints hold a few plain data types (its ``HistoryBuffer``, numpy arrays and
  scalars) that the safe unpickler refuses, so ``--resume`` fails. We allow-list exactly those
  types; the safety stays on for every file.
* ``mmengine.config.utils``: a base like ``mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py`` is
  found through the package's model index, which mmengine re-reads (400 YAML files for mmdet, over
  a second) for every such base of every config; the index is read once per package and process.
* ``mmengine.analysis.print_helper``: mmseg 1.2.2's own ``get_flops.py`` passes both ``input_shape``
  and ``inputs`` to ``get_model_complexity_info``, which mmengine 0.10.7 refuses; the given inputs
  are used (the shape is theirs). Its counter also learns the global filter's FFTs
  (``gfnet_seg.analysis.flops``), which mmengine has no handler for.
* ``mmseg.visualization.local_visualizer``: with labels on (``browse_dataset.py``, ``--show-dir``),
  mmseg 1.2.2 hands OpenCV >= 4.12 colours as NumPy values and channel-flipped image views, which
  ``cv2.rectangle`` refuses; it gets tuples of ints and a contiguous image.
* ``mmengine.hooks.logger_hook``: mmengine 0.10.7's ``LoggerHook`` writes the test metrics
  (``<log_dir>/<timestamp>.json``) from every process of a distributed test, all to the same file;
  two processes writing it at once leave invalid JSON (seen with ``dist_test.sh``). The main
  process alone writes it now, atomically.
* ``mmdet.models.roi_heads.roi_extractors.single_level_roi_extractor``: under AMP mmdet casts the
  RoIs to the features' dtype, and in bfloat16 (``--amp`` on a CPU) a box edge near x = 1100 moves by
  up to 4 pixels; the boxes stay in float32 (RoIAlign computes in float32 under autocast anyway).
"""
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys

# The environment variable that turns the layer off (for a program, or to see mmcv-lite as it is).
OPT_OUT = 'GFNET_SEG_MMCV_LITE'
# The file whose source becomes ``mmcv.ops``.
MMCV_OPS_SOURCE = osp.join(osp.dirname(osp.abspath(__file__)), 'mmcv_ops.py')
# The one line of ``gfnet_seg-mmcv-lite.pth`` (setup.py writes it): load this file as
# ``gfnet_seg.compat`` without importing the package (which imports torch), then add the finder.
PTH_NAME = 'gfnet_seg-mmcv-lite.pth'
PTH_LINE = ("import importlib.util as u, os, sys; s = u.find_spec('gfnet_seg'); "
            "c = s and u.spec_from_file_location('gfnet_seg.compat', "
            "os.path.join(s.submodule_search_locations[0], 'compat.py')); "
            "m = c and sys.modules.setdefault('gfnet_seg.compat', u.module_from_spec(c)); "
            "m and (getattr(m, 'install_import_hook', None) or c.loader.exec_module(m) or m.install_import_hook)()")


def layer_enabled() -> bool:
    return os.environ.get(OPT_OUT, '1').strip().lower() not in ('0', 'false', 'no', 'off')


def compiled_mmcv_ops_available() -> bool:
    """True when mmcv's compiled extension (full mmcv) is importable."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def mmcv_lite_ops_installed() -> bool:
    """True when ``mmcv.ops`` (imported or not yet) comes from this layer."""
    import mmcv.ops
    return getattr(mmcv.ops, '__file__', None) == MMCV_OPS_SOURCE


class _PatchingLoader:
    """Runs a module's own loader, then ``patch(module)``."""

    def __init__(self, loader, patch):
        self.loader, self.patch = loader, patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.patch(module)


class _OpsSubmoduleLoader:
    """``mmcv.ops.<name>`` for a submodule that needs compiled ops: its names resolve in ``mmcv.ops``
    (ours, or stand-ins that raise when used)."""

    def create_module(self, spec):
        return None  # the default module

    def exec_module(self, module):
        ops = sys.modules['mmcv.ops']
        submodule = module.__name__.rpartition('.')[2]
        module.__getattr__ = lambda name: ops.resolve(submodule, name)
        module.__dir__ = lambda: sorted(ops.source_names(submodule))


class MMCVLiteFinder:
    """The import hook: ``mmcv.ops`` and its submodules from the layer where compiled ops are absent;
    mmengine's and mmseg's modules of ``PATCHES`` patched right after they load. (No ``importlib.abc`` base: importing it
    costs more than a program's start-up.)"""

    GFNET_SEG_MMCV_LITE = True  # marks the finder, whichever copy of this module made it

    def __init__(self):
        # Set by ``import gfnet_seg``, which needs the layer whatever GFNET_SEG_MMCV_LITE says.
        self.required = False

    def find_spec(self, fullname, path=None, target=None):
        is_ops = fullname == 'mmcv.ops' or fullname.startswith('mmcv.ops.')
        if not (is_ops or fullname in PATCHES) or not (self.required or layer_enabled()):
            return None
        if is_ops:
            return self._ops_spec(fullname)
        patch = PATCHES[fullname]
        spec = self._real_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader, patch)
        return spec

    def _real_spec(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, 'find_spec'):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    return spec
        return None

    @staticmethod
    def _ops_spec(fullname):
        if compiled_mmcv_ops_available():
            return None
        if fullname == 'mmcv.ops':
            return importlib.util.spec_from_file_location('mmcv.ops', MMCV_OPS_SOURCE, submodule_search_locations=[])
        ops = importlib.import_module('mmcv.ops')
        submodule = fullname[len('mmcv.ops.'):]
        if '.' in submodule:
            return None
        if not ops.needs_compiled_ops(submodule):  # mmcv-lite's own pure-PyTorch module
            return importlib.util.spec_from_file_location(fullname, osp.join(ops.MMCV_OPS_SOURCES, f'{submodule}.py'))
        return importlib.machinery.ModuleSpec(fullname, _OpsSubmoduleLoader())


def import_hook():
    """The ``MMCVLiteFinder`` in ``sys.meta_path``, or None."""
    return next((finder for finder in sys.meta_path if getattr(finder, 'GFNET_SEG_MMCV_LITE', False)), None)


def install_import_hook() -> bool:
    """Put ``MMCVLiteFinder`` first in ``sys.meta_path`` unless one is there. True if added."""
    if import_hook() is not None:
        return False
    sys.meta_path.insert(0, MMCVLiteFinder())
    return True


def _module_dir(package: str):
    """Folder of the module that ``package`` (a module or distribution name) installs, or None."""
    import importlib.metadata

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


def _patch_package_utils(package_utils) -> None:
    """Give mmengine's ``package_utils`` importlib-based look-ups where ``pkg_resources`` is absent;
    run before ``mmengine.utils`` and ``mmengine.config.config`` bind the two names."""
    if importlib.util.find_spec('pkg_resources') is None:
        package_utils.is_installed = is_installed
        package_utils.get_installed_path = get_installed_path


def install_package_lookup_fallback() -> bool:
    """The look-ups for an mmengine imported before the hook existed. True if installed."""
    if importlib.util.find_spec('pkg_resources') is not None:
        return False
    import mmengine.config.config
    import mmengine.utils
    import mmengine.utils.package_utils
    for module in (mmengine.utils, mmengine.utils.package_utils, mmengine.config.config):
        module.is_installed = is_installed
        module.get_installed_path = get_installed_path
    return True


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list the data types mmengine puts in its checkpoints for ``weights_only`` loading."""
    import numpy as np
    import torch
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
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer

    method = getattr(HistoryBuffer, name, None) if owner is HistoryBuffer and not name.startswith('_') else None
    if not callable(method):
        raise pickle.UnpicklingError(f'checkpoint asks for getattr({owner!r}, {name!r}), which is not allowed')
    return method


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


_model_indices = {}


def _model_index(package_path: str) -> dict:
    """Config name -> the model-index entry of its first weights, as mmengine's ``_get_cfg_metainfo``
    collects them from ``<package>/.mim/model-index.yml`` and the metafiles it imports; read once."""
    if package_path not in _model_indices:
        import warnings

        from mmengine.fileio import load
        index = {}
        for meta_path in load(osp.join(package_path, '.mim', 'model-index.yml'))['Import']:
            for model_cfg in load(osp.join(package_path, '.mim', meta_path))['Models']:
                if 'Config' not in model_cfg:
                    warnings.warn(f'There is not `Config` define in {model_cfg}')
                    continue
                index.setdefault(model_cfg['Config'].partition('/')[-1], model_cfg)
        _model_indices[package_path] = index
    return _model_indices[package_path]


def _get_cfg_metainfo(package_path: str, cfg_path: str) -> dict:
    """``mmengine.config.utils._get_cfg_metainfo`` on the index read once per package."""
    index = _model_index(package_path)
    if cfg_path not in index:
        raise ValueError(f'Expected configs: {index.keys()}, but got {cfg_path}')
    return dict(index[cfg_path])


def _complexity_info_with_inputs(original):
    def get_model_complexity_info(model, input_shape=None, inputs=None, *args, **kwargs):
        """mmengine's ``get_model_complexity_info``; given ``inputs`` win over ``input_shape``, and the
        FFTs of global filters are counted."""
        from mmengine.analysis import complexity_analysis

        from .analysis.flops import FFT_HANDLES
        for op, handle in FFT_HANDLES.items():
            complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS.setdefault(op, handle)
        return original(model, None if inputs is not None else input_shape, inputs, *args, **kwargs)
    get_model_complexity_info.__wrapped__ = original
    return get_model_complexity_info


def _patch_print_helper(print_helper) -> None:
    if not hasattr(print_helper.get_model_complexity_info, '__wrapped__'):
        print_helper.get_model_complexity_info = _complexity_info_with_inputs(print_helper.get_model_complexity_info)


def _patch_seg_visualizer(local_visualizer) -> None:
    visualizer = local_visualizer.SegLocalVisualizer
    original = visualizer._draw_sem_seg
    if hasattr(original, '__wrapped__'):
        return

    def _draw_sem_seg(self, image, sem_seg, classes, palette, *args, **kwargs):
        import numpy as np
        palette = None if palette is None else [tuple(int(c) for c in colour) for colour in palette]
        return original(self, np.ascontiguousarray(image), sem_seg, classes, palette, *args, **kwargs)
    _draw_sem_seg.__wrapped__ = original
    visualizer._draw_sem_seg = _draw_sem_seg


def _patch_roi_extractor(single_level_roi_extractor) -> None:
    extractor = single_level_roi_extractor.SingleRoIExtractor
    original = extractor.forward
    if hasattr(original, '__wrapped__'):
        return

    def forward(self, feats, rois, roi_scale_factor=None):
        """mmdet's, with the RoIs kept in float32 where the features are float16 or bfloat16 (AMP):
        mmdet casts them to the features' dtype, and bfloat16's 8 significant bits move a box edge
        at x = 1100 by up to 4 pixels. RoIAlign runs in float32 under autocast anyway
        (torchvision casts its inputs up), so this costs nothing; the result has the features' dtype."""
        import torch
        dtype = feats[0].dtype
        if dtype not in (torch.float16, torch.bfloat16):
            return original(self, feats, rois, roi_scale_factor)
        return original(self, tuple(f.float() for f in feats), rois.float(), roi_scale_factor).to(dtype)
    forward.__wrapped__ = original
    extractor.forward = forward


# Module -> what the import hook does right after it loads.
PATCHES = {
    'mmengine.utils.package_utils': _patch_package_utils,
    'mmengine.runner.checkpoint': lambda module: allow_mmengine_checkpoint_types(),
    'mmengine.hooks.logger_hook': lambda module: setattr(module.LoggerHook, 'after_test_epoch', _after_test_epoch),
    'mmengine.analysis.print_helper': _patch_print_helper,
    'mmengine.config.utils': lambda module: setattr(module, '_get_cfg_metainfo', _get_cfg_metainfo),
    'mmseg.visualization.local_visualizer': _patch_seg_visualizer,
    'mmdet.models.roi_heads.roi_extractors.single_level_roi_extractor': _patch_roi_extractor,
}


def install() -> None:
    """The whole layer, also where the ``.pth`` hook is absent or turned off; idempotent. Called by
    ``import gfnet_seg``: the mmengine modules it already imported are patched at once."""
    install_import_hook()
    import_hook().required = True
    for name, patch in PATCHES.items():  # modules imported before the hook was there
        if name in sys.modules:
            patch(sys.modules[name])
    install_package_lookup_fallback()
    allow_mmengine_checkpoint_types()
    dump_test_metrics_once()
