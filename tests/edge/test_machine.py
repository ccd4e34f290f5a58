"""edge/machine.py: what a measurement ran on."""

from __future__ import annotations

import os

from edge.machine import machine_info, package_version


def test_machine_info_names_the_cores_python_and_litert():
    info = machine_info()
    assert info["cores"] == os.cpu_count() and info["python"].count(".") == 2
    assert info["litert"] == (package_version("ai-edge-litert") or "unknown")
    assert isinstance(info["loadavg_1m_at_start"], float)


def test_package_version_of_a_missing_distribution_is_none():
    assert package_version("numpy")
    assert package_version("no-such-distribution-fer-edge") is None
