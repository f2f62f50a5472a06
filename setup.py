import ast
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

# The mmcv-lite layer for every program of the environment (gfnet_seg/compat.py): one .pth file in
# site-packages whose line adds an import hook that acts only when mmcv.ops or a few mmengine
# modules are imported. Its name and line are read from compat.py (not importable before install).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gfnet_seg', 'compat.py')) as f:
    _constants = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(f.read()).body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') in ('PTH_NAME', 'PTH_LINE')}
PTH_NAME, PTH_LINE = _constants['PTH_NAME'], _constants['PTH_LINE']


def _write_pth(folder):
    with open(os.path.join(folder, PTH_NAME), 'w') as f:
        f.write(PTH_LINE + '\n')


class BuildPyWithPth(build_py):
    """A wheel's top level is site-packages: the .pth goes there."""

    def run(self):
        super().run()
        _write_pth(self.build_lib)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH_NAME)]


class EditableWheelWithPth(editable_wheel):
    """``pip install -e``: setuptools' editable wheel holds only its own .pth; add ours beside it."""

    def _run_build_commands(self, dist_name, unpacked_wheel, *args, **kwargs):
        result = super()._run_build_commands(dist_name, unpacked_wheel, *args, **kwargs)
        _write_pth(unpacked_wheel)
        return result


setup(
    name='gfnet_seg',
    version='0.1.0',
    description='Global Filter Networks (GFNet, GFNet-H) for ImageNet classification, '
    'semantic segmentation (mmsegmentation) and detection (mmdetection)',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['gfnet_seg', 'gfnet_seg.*']),
    cmdclass={'build_py': BuildPyWithPth, 'editable_wheel': EditableWheelWithPth},
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'timm>=1.0',
        'safetensors',
        'mmengine>=0.10.5,<1',
        'mmcv-lite>=2.0.0rc4,<2.2.0',
        'mmsegmentation==1.2.2',
        # mmengine pulls opencv-python 5.x otherwise, which this stack does not import.
        'opencv-python<5',
        # mmseg imports these at package import time without declaring them.
        'ftfy',
        'regex',
        'matplotlib',
        'tqdm',
        'pyyaml',
    ],
    extras_require={
        'dev': ['pytest>=7', 'pytest-timeout', 'pytest-xdist'],
        # COCO detection and instance segmentation (configs/retinanet, configs/mask_rcnn).
        'det': ['mmdet==3.3.0', 'pycocotools>=2.0'],
        # ONNX export and its verification in onnxruntime (tools/deployment/); the core needs none.
        'deploy': ['onnx>=1.16', 'onnxruntime>=1.18', 'onnxscript>=0.2'],
        # Corruptions of tools/analysis/robustness.py (frost pictures, skimage filters); the core needs none.
        'robustness': ['imagecorruptions==1.1.2', 'scikit-image>=0.19'],
    },
)
