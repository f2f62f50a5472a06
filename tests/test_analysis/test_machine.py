"""machine_info against what torch, /proc/cpuinfo and os report; ISA caps set through the environment;
every benchmark row carries the machine, and a capped ISA in a subprocess shows in its rows."""
import os
import subprocess

import pytest
import torch

from gfnet_seg.analysis import benchmark as bench
from gfnet_seg.analysis import machine


def test_machine_info_matches_what_torch_and_the_os_report():
    info = machine.machine_info()
    assert tuple(info) == machine.FIELDS
    assert info['torch_version'] == torch.__version__
    assert info['cpu_count'] == os.cpu_count()
    assert info['aten_isa'] == torch.backends.cpu.get_cpu_capability().upper()
    config = torch.__config__.show()
    if torch.backends.mkldnn.is_available():
        assert info['onednn_version'] and f"v{info['onednn_version']}" in config
    if torch.backends.mkl.is_available():
        assert info['mkl_version'] and f"Version {info['mkl_version']}" in config
    if os.path.exists('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = {' '.join(line.split(':', 1)[1].split()) for line in f if line.startswith('model name')}
        if names:
            assert info['cpu_model'] in names
    assert info['gpu'] == ''
    # the ISA every library uses is no wider than any of theirs, and ATen's never wider than the CPU's
    tiers = [machine.TIERS.index(info[k]) for k in ('aten_isa', 'onednn_isa', 'mkl_isa') if info[k]]
    assert machine.TIERS.index(info['isa']) == min(tiers)
    assert max(machine.tier(name) for name in info['cpu_isa'].split()) >= machine.TIERS.index(info['aten_isa'])


@pytest.mark.parametrize('flags, expected', [
    ({'sse4_2'}, 'DEFAULT'),
    ({'sse4_2', 'avx'}, 'AVX'),
    ({'avx', 'avx2', 'fma'}, 'AVX2'),
    ({'avx', 'avx2', 'fma', 'avx512f'}, 'AVX2'),  # AVX-512 F alone: not what the libraries' kernels need
    ({'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'}, 'AVX2 AVX512'),
    ({'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'amx_tile', 'amx_bf16'}, 'AVX2 AVX512 AMX'),
])
def test_cpu_isa_from_flags(flags, expected):
    assert machine.cpu_isa(flags) == expected


@pytest.mark.parametrize('value, expected', [
    ('avx2', 'AVX2'), ('AVX2_VNNI', 'AVX2'), ('AVX512_CORE', 'AVX512'), ('AVX512_E1', 'AVX512'),
    ('AVX10_1_512', 'AVX512'), ('AVX512_CORE_AMX', 'AMX'), ('avx', 'AVX'), ('SSE41', 'DEFAULT'),
    ('default', 'DEFAULT'), ('ALL', None), ('', None)])
def test_tier_of_cap_values(value, expected):
    assert machine.tier(value) == (None if expected is None else machine.TIERS.index(expected))


def test_caps_in_the_environment_narrow_the_isa_in_effect(monkeypatch):
    for name in machine.CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(machine, 'cpu_isa', lambda flags=None: 'AVX2 AVX512 AMX')
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX512')
    info = machine.machine_info()
    assert info['isa_caps'] == '' and info['aten_isa'] == 'AVX512' and info['isa'] == 'AVX512'
    if torch.backends.mkldnn.is_available():
        assert info['onednn_isa'] == 'AMX'
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    monkeypatch.setenv('MKL_ENABLE_INSTRUCTIONS', 'AVX2')
    info = machine.machine_info()
    assert info['isa_caps'] == 'ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2'
    assert info['aten_isa'] == 'AVX512'
    if torch.backends.mkldnn.is_available() and torch.backends.mkl.is_available():
        assert (info['onednn_isa'], info['mkl_isa'], info['isa']) == ('AVX2', 'AVX2', 'AVX2')
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX512_CORE')  # a cap above MKL's: the narrowest counts
    assert machine.machine_info()['isa'] == ('AVX2' if torch.backends.mkl.is_available() else 'AVX512')
    line = machine.describe(machine.machine_info(), threads=2)
    assert 'ISA in effect' in line and '2 threads' in line and f'torch {torch.__version__}' in line


def test_benchmark_rows_carry_the_machine(tmp_path):
    rows = bench.benchmark(['gfnet-h-ti'], sizes=[64], warmup=0, repeats=1, memory=False)
    info = machine.machine_info()
    for name in machine.FIELDS:
        assert rows[0][name] == info[name], name
    assert int(rows[0]['threads']) == torch.get_num_threads()
    bench.write_csv(rows, str(tmp_path / 'b.csv'))
    (row,) = bench.read_csv(str(tmp_path / 'b.csv'))
    assert set(machine.FIELDS) <= set(row) and row['cpu_model'] == info['cpu_model']
    assert bench.summary(rows).splitlines()[0] == 'machine: ' + machine.describe(info, torch.get_num_threads())


@pytest.mark.skipif('AVX2' not in machine.cpu_isa().split(), reason='the CPU has no AVX2 to cap to')
def test_capped_isa_in_a_subprocess_shows_in_the_rows(python, repo_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in machine.CAP_VARIABLES}
    env.update(ATEN_CPU_CAPABILITY='avx2', PYTHONPATH=repo_root)
    out = tmp_path / 'capped'
    subprocess.run([python, os.path.join(repo_root, 'tools', 'analysis', 'benchmark.py'), '--models', 'gfnet-h-ti',
                    '--sizes', '32', '--warmup', '0', '--repeats', '1', '--threads', '1', '--no-memory',
                    '--out', str(out)], env=env, check=True, capture_output=True, cwd=str(tmp_path))
    (row,) = bench.read_csv(str(out) + '.csv')
    assert row['isa_caps'] == 'ATEN_CPU_CAPABILITY=avx2'
    assert (row['aten_isa'], row['isa']) == ('AVX2', 'AVX2')
    assert row['cpu_isa'] == machine.cpu_isa() and row['threads'] == '1'
