from setuptools import find_packages, setup

setup(
    name='gfnet_seg',
    version='0.1.0',
    description='Global Filter Networks (GFNet, GFNet-H) for ImageNet classification '
    'and semantic segmentation on mmsegmentation',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['gfnet_seg', 'gfnet_seg.*']),
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'timm>=1.0',
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
        'dev': ['pytest>=7', 'pytest-timeout'],
        # ONNX export and its verification in onnxruntime (tools/deployment/); the core needs none.
        'deploy': ['onnx>=1.16', 'onnxruntime>=1.18', 'onnxscript>=0.2'],
        # Corruptions of tools/analysis/robustness.py (frost pictures, skimage filters); the core needs none.
        'robustness': ['imagecorruptions==1.1.2', 'scikit-image>=0.19'],
    },
)
