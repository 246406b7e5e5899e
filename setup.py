from setuptools import find_packages, setup


def read_version():
    scope = {}
    with open('efficientvit_mm/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='efficientvit_mm',
    version=read_version(),
    description='EfficientViT (CVPR 2023, cascaded group attention) for '
    'OpenMMLab 2.0: mmdet, mmsegmentation and mmpretrain',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['efficientvit_mm', 'efficientvit_mm.*']),
    # the CPU kernels' source, compiled against the installed torch at first
    # use or by tools/setup_env.sh (efficientvit_mm/deploy/native.py)
    package_data={'efficientvit_mm.deploy': ['csrc/*.cpp', 'csrc/*.h']},
    python_requires='>=3.8',
    # The exact, verified stack is pinned in requirements/ and installed by
    # tools/setup_env.sh (mmcv must be built from source with its ops).
    install_requires=['torch', 'mmengine>=0.10.0', 'mmcv>=2.0.0', 'numpy'],
    extras_require={
        'det': ['mmdet>=3.0.0'],
        'seg': ['mmsegmentation>=1.0.0'],
        'cls': ['mmpretrain>=1.0.0'],
        'onnx': ['onnx', 'onnxruntime'],
        'timm': ['timm'],
        'tests': ['pytest', 'onnx', 'onnxruntime', 'timm'],
    },
    license='Apache-2.0',
)
