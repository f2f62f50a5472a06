"""What machine a measurement comes from: CPU model, vector ISA (what the CPU has, the caps set through
the environment, what ATen, oneDNN and MKL use), threads and library versions, as one flat dict.

``machine_info()`` is what every benchmark row records; ``describe()`` puts it in one line.

The libraries pick their kernels at run time, each capped by its own variable, read once at start-up:

* ATen (torch's own vectorised kernels: GELU, LayerNorm, element-wise ops): ``ATEN_CPU_CAPABILITY``
  (``default``, ``avx2``, ``avx512``); ``torch.backends.cpu.get_cpu_capability()`` reports its choice.
* oneDNN (``mkldnn`` ops: the fused linear + GELU, convolutions): ``ONEDNN_MAX_CPU_ISA`` (older name
  ``DNNL_MAX_CPU_ISA``; ``AVX2``, ``AVX512_CORE``, ``AVX512_CORE_AMX``, ...).
* MKL (``addmm``/``mm`` in float32, the FFTs): ``MKL_ENABLE_INSTRUCTIONS`` (``AVX2``, ``AVX512``, ...).

Neither oneDNN nor MKL reports its choice to Python, so their ISA here is the CPU's best capped by their
variable (the way both choose).
"""
import os
import platform
import re
from typing import Dict, Iterable, Optional

import torch

# Vector ISA tiers, narrowest first. ``isa`` columns name one of them.
TIERS = ('DEFAULT', 'AVX', 'AVX2', 'AVX512', 'AMX')
# The environment variables that cap an ISA, in the order the ``isa_caps`` column lists them.
CAP_VARIABLES = ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA', 'MKL_ENABLE_INSTRUCTIONS')
FIELDS = ('cpu_model', 'cpu_count', 'cpu_isa', 'isa_caps', 'aten_isa', 'onednn_isa', 'mkl_isa', 'isa',
          'torch_version', 'onednn_version', 'mkl_version', 'gpu')


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith(('model name', 'hardware')):
                    return ' '.join(line.split(':', 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def cpu_flags() -> Optional[set]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (None where there is no such file)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return None


def cpu_isa(flags: Optional[Iterable[str]] = None) -> str:
    """The x86 vector extensions the CPU has among AVX2, AVX-512 (F, BW, VL, DQ: what the libraries'
    AVX-512 kernels need) and AMX (tiles with int8/bf16), as e.g. ``'AVX2 AVX512 AMX'``. Without flags
    (not Linux): what ATen found, which is the CPU's unless capped."""
    flags = cpu_flags() if flags is None else set(flags)
    if flags is None:
        return torch.backends.cpu.get_cpu_capability()
    found = []
    if 'avx2' in flags and 'fma' in flags:
        found.append('AVX2')
    if {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= flags:
        found.append('AVX512')
    if 'amx_tile' in flags and ({'amx_bf16', 'amx_int8'} & flags):
        found.append('AMX')
    if not found:
        found.append('AVX' if 'avx' in flags else 'DEFAULT')
    return ' '.join(found)


def tier(name: str) -> Optional[int]:
    """The tier (index in ``TIERS``) that an ISA name or a cap's value stands for; None for no cap
    (``ALL``, empty, unknown)."""
    name = name.strip().upper()
    if not name or name == 'ALL':
        return None
    if 'AMX' in name:
        return TIERS.index('AMX')
    if name.startswith(('AVX512', 'AVX10', 'ZMM')):
        return TIERS.index('AVX512')
    if name.startswith('AVX2'):
        return TIERS.index('AVX2')
    if name.startswith('AVX'):
        return TIERS.index('AVX')
    if name.startswith(('SSE', 'DEFAULT', 'NO_AVX')):
        return TIERS.index('DEFAULT')
    return None


def _capped(best: int, cap_value: Optional[str]) -> str:
    cap = None if cap_value is None else tier(cap_value)
    return TIERS[best if cap is None else min(best, cap)]


def isa_caps(environ=None) -> str:
    """The ISA caps set in the environment, ``'NAME=value'`` separated by spaces ('' for none)."""
    environ = os.environ if environ is None else environ
    return ' '.join(f'{name}={environ[name]}' for name in CAP_VARIABLES if environ.get(name))


def _version(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    return match.group(1) if match else ''


def library_versions() -> Dict[str, str]:
    """torch's version and those of the oneDNN and MKL it was built with ('' where it has none)."""
    config = torch.__config__.show()
    onednn = torch.backends.mkldnn.is_available() and _version(r'(?:MKL-DNN|oneDNN)\D*v?(\d+(?:\.\d+)+)', config)
    mkl = torch.backends.mkl.is_available() and _version(r'Math Kernel Library Version (\S+?)-Product', config)
    return dict(torch_version=torch.__version__, onednn_version=onednn or '', mkl_version=mkl or '')


def machine_info(device: str = 'cpu') -> Dict[str, object]:
    """The ``FIELDS`` of this process: CPU model and logical CPUs, the CPU's vector ISA (``cpu_isa``),
    the caps set (``isa_caps``), the ISA ATen uses and the one oneDNN and MKL use (CPU's best capped
    by their variable), ``isa``: the narrowest of those three (the one every kernel can count on:
    AVX512 on an AMX CPU, AVX2 under any AVX2 cap), the versions, and the GPU's name when ``device``
    is CUDA ('' otherwise). ``threads`` is in every benchmark row already."""
    aten = torch.backends.cpu.get_cpu_capability().upper()
    aten_tier = tier(aten)
    aten_tier = TIERS.index('DEFAULT') if aten_tier is None else aten_tier
    has = cpu_isa()
    best = max((tier(name) for name in has.split() if tier(name) is not None), default=aten_tier)
    onednn_cap = os.environ.get('ONEDNN_MAX_CPU_ISA') or os.environ.get('DNNL_MAX_CPU_ISA')
    onednn = _capped(best, onednn_cap) if torch.backends.mkldnn.is_available() else ''
    mkl = _capped(best, os.environ.get('MKL_ENABLE_INSTRUCTIONS')) if torch.backends.mkl.is_available() else ''
    in_effect = min([aten_tier] + [TIERS.index(name) for name in (onednn, mkl) if name])
    device = torch.device(device)
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else ''
    return dict(cpu_model=cpu_model(), cpu_count=os.cpu_count(), cpu_isa=has, isa_caps=isa_caps(),
                aten_isa=TIERS[aten_tier], onednn_isa=onednn, mkl_isa=mkl, isa=TIERS[in_effect],
                **library_versions(), gpu=gpu)


def describe(info: Dict[str, object], threads=None) -> str:
    """One line naming the machine of ``info`` (a ``machine_info()`` or a CSV row)."""
    caps = info.get('isa_caps') or 'no ISA caps'
    line = (f"{info.get('cpu_model')} ({info.get('cpu_count')} CPUs, has {info.get('cpu_isa')}); ISA in effect "
            f"{info.get('isa')} (ATen {info.get('aten_isa')}, oneDNN {info.get('onednn_isa') or '-'}, "
            f"MKL {info.get('mkl_isa') or '-'}; {caps})")
    if threads not in (None, ''):
        line += f'; {threads} threads'
    line += (f"; torch {info.get('torch_version')}, oneDNN {info.get('onednn_version') or '-'}, "
             f"MKL {info.get('mkl_version') or '-'}")
    if info.get('gpu'):
        line += f"; GPU {info['gpu']}"
    return line
