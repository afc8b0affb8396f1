from osrl_unlearn.patch_safety_gymnasium import patch_source

SOURCE = """from dataclasses import dataclass

import numpy as np


@dataclass
class Hazards:
    color: np.array = COLOR['hazard']
    alpha: float = COLOR['hazard'][-1]
    size: float = 0.2
"""


def test_array_defaults_become_factories_and_field_is_imported():
    patched = patch_source(SOURCE)
    assert "    color: np.array = field(default_factory=lambda: COLOR['hazard'])\n" in patched
    assert "from dataclasses import dataclass, field\n" in patched
    assert "    alpha: float = COLOR['hazard'][-1]\n" in patched  # scalar default left alone


def test_patch_is_idempotent_and_leaves_clean_files_alone():
    once = patch_source(SOURCE)
    assert patch_source(once) == once
    clean = "x = 1\n"
    assert patch_source(clean) is clean


def test_installed_safety_gymnasium_imports():
    import safety_gymnasium  # noqa: F401  (fails on Python 3.11 without the patch)
