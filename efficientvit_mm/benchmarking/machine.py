"""What a benchmark ran on: CPU model and its matrix units, cores, GPU."""
import os
import platform
from typing import Set

import torch


def cpu_flags() -> Set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_units(flags: Set[str] = None) -> str:
    """'AMX', 'AVX512-BF16' or '' (no bf16 matrix instructions)."""
    flags = cpu_flags() if flags is None else flags
    if 'amx_bf16' in flags:
        return 'AMX'
    if 'avx512_bf16' in flags:
        return 'AVX512-BF16'
    return ''


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """One line: CPU model, cores, bf16 units, and the GPU if any."""
    units = bf16_units()
    text = (f'{cpu_model()}, {os.cpu_count()} cores, '
            f'{"bf16 units: " + units if units else "no bf16 units"}')
    if torch.cuda.is_available():
        text += f' | {torch.cuda.get_device_name()}'
    return text


def write_figures(path: str, results: dict) -> None:
    """Write ``results`` to the JSON file ``path`` with the machine they
    were measured on (nothing when ``path`` is empty)."""
    if not path:
        return
    import json
    with open(path, 'w') as f:
        json.dump(
            dict(machine=describe_machine(), results=results), f, indent=2)
