"""The dependency stack: pins hold, the mmcv-lite stand-in behaves, doctor reports, checkpoints load safely."""

from __future__ import annotations

import importlib.metadata as md
import json
import pickle
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .conftest import run_cli

REQS = Path(__file__).resolve().parents[2] / "requirements" / "train.txt"


def test_installed_stack_satisfies_requirements_train_txt() -> None:
    reqs = [Requirement(line) for line in REQS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    names = {r.name for r in reqs}
    assert {"torch", "mmengine", "mmdet", "mmcv-lite", "transformers", "numpy"} <= names
    assert str(next(r for r in reqs if r.name == "torch").specifier) == "==2.13.0"
    for r in reqs:
        installed = md.version(r.name).split("+")[0]
        assert r.specifier.contains(installed, prereleases=True), (r, installed)


def test_standin_kernels_raise_a_clear_error() -> None:
    from odvgkit_train import _ext_shim

    _ext_shim.install()  # idempotent; importing odvgkit_train already did it
    import mmcv._ext as ext
    from mmcv.ops import MultiScaleDeformableAttention  # importable thanks to the stand-in

    from odvgkit_train._ext_shim import MissingKernelError, has_compiled_ops

    assert MultiScaleDeformableAttention is not None
    assert not has_compiled_ops()
    with pytest.raises(MissingKernelError, match=r"'ms_deform_attn_forward' is not available: only mmcv-lite.*mmcv==2.1.0"):
        ext.ms_deform_attn_forward()


def test_doctor_reports_the_installed_stack() -> None:
    proc = run_cli("doctor", "--json")
    info = json.loads(proc.stdout)
    for name in ("torch", "mmengine", "mmdet", "transformers", "numpy", "mmcv-lite"):
        assert info["versions"][name] == md.version(name)
    assert info["mmcv_flavour"] == "lite" and info["compiled_ops"] is False
    assert info["cuda"] is False and info["traps"] == []
    human = run_cli("doctor").stdout
    assert "no known traps found" in human and "stand-in for mmcv._ext" in human


def test_doctor_trap_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from odvgkit_train import doctor

    fake = {"torch": "2.13.0", "mmcv": "2.2.0", "mmcv-lite": "2.1.0", "mmengine": "0.10.7", "mmdet": "3.3.0",
            "transformers": "5.1.0", "numpy": "1.26.4"}
    monkeypatch.setattr(doctor, "version", lambda name: fake.get(name))
    problems = " | ".join(t["problem"] for t in doctor.diagnose()["traps"])
    assert "both mmcv and mmcv-lite" in problems
    assert "mmcv 2.2.0: mmdet 3.3.0 requires mmcv>=2.0.0rc4,<2.2.0" in problems
    assert "numpy 1.26.4" in problems and "np.long" in problems
    assert "transformers 5.1.0" in problems and "batch_encode_plus" in problems


class _Evil:
    def __reduce__(self):  # what a malicious checkpoint does
        import os

        return (os.system, ("echo pwned",))


def test_checkpoint_loader_refuses_unlisted_globals(tmp_path: Path) -> None:
    import torch

    from odvgkit.errors import OdvgError
    from odvgkit_train.checkpoint import read_checkpoint, safe_load

    bad = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": {"x": _Evil()}}, bad)
    with pytest.raises(pickle.UnpicklingError, match=r"posix\.system|os\.system"):
        safe_load(bad)
    with pytest.raises(OdvgError, match=r"evil\.pth: cannot load checkpoint .*not on odvgkit's checkpoint allow-list"):
        read_checkpoint(bad)
