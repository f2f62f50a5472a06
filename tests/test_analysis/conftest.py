"""The analysis tools run in-process: each is loaded from its file and its ``main(argv)`` called."""
import importlib.util
import os

import pytest


@pytest.fixture
def tool(repo_root):
    def load(name):
        path = os.path.join(repo_root, 'tools', 'analysis', f'{name}.py')
        spec = importlib.util.spec_from_file_location(f'analysis_tool_{name}', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.main

    return load
