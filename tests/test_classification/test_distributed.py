"""tools/dist_train_cls.sh: two CPU processes under torchrun (gloo) train one epoch together."""
import os
import socket
import subprocess

import pytest

from gfnet_seg.classification import main

from cls_utils import ARCH, TINY_FLAGS, TINY_MODEL, read_log


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_torchrun_two_processes_one_epoch(tmp_path, image_data, repo_root, python):
    output_dir = str(tmp_path / 'dist')
    cmd = ['bash', os.path.join(repo_root, 'tools', 'dist_train_cls.sh'), ARCH, '2', *TINY_FLAGS,
           '--data-path', image_data, '--output_dir', output_dir, '--epochs', '1', '--batch-size', '8',
           '--dist-eval']
    env = dict(os.environ, PYTHON=python, PORT=str(free_port()), OMP_NUM_THREADS='1')
    result = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'on 2 process(es)' in result.stdout

    log = read_log(output_dir)
    assert [entry['epoch'] for entry in log] == [0]
    # --dist-eval shards the 33 val images without padding; the summed result is that of one
    # process evaluating the whole split with the saved weights.
    single = main([*TINY_MODEL, '--data-path', image_data, '--eval',
                   '--resume', os.path.join(output_dir, 'checkpoint.pth')])
    assert log[0]['test_images'] == single['images'] == 33
    assert log[0]['test_acc1'] == pytest.approx(single['acc1'], abs=1e-4)
    assert log[0]['test_loss'] == pytest.approx(single['loss'], rel=1e-5)
