"""The slurm master address is found without a shell."""
import os
import stat

from efficientvit_mm.runtime.dist import first_slurm_host


def test_first_host_without_scontrol(tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', str(tmp_path))  # no scontrol on PATH
    assert first_slurm_host('n[01-04,07],m3') == 'n01'
    assert first_slurm_host('gpu-[3,5]') == 'gpu-3'
    assert first_slurm_host('node7') == 'node7'
    assert first_slurm_host('') == '127.0.0.1'


def test_node_list_is_never_run_as_a_command(tmp_path, monkeypatch):
    marker = tmp_path / 'ran'
    monkeypatch.setenv('PATH', str(tmp_path))
    host = first_slurm_host(f'n1; touch {marker}')
    assert host == '127.0.0.1' and not marker.exists()


def test_scontrol_is_asked_with_an_argument_list(tmp_path, monkeypatch):
    """A stand-in scontrol records its arguments: one argv entry for the
    whole list, and its first output line is the host."""
    log = tmp_path / 'argv'
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n'
                        'printf "host-a\\nhost-b\\n"\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}/bin:/usr/bin')
    assert first_slurm_host('host-[a-b]; echo x') == 'host-a'
    assert log.read_text().splitlines() == [
        'show', 'hostnames', 'host-[a-b]; echo x'
    ]
