"""The Containerfile against what the package and the manifests need: every package copied in, a pinned base, a
non-root numeric user, `headroom` as the entry point, and the package data the entry points read at run time."""

import re
import tomllib
from pathlib import Path

from tests.serving.k8s.test_render import ROOT

CONTAINERFILE = (ROOT / "Containerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_is_copied_in():
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) /src/\1$", CONTAINERFILE, re.MULTILINE))
    assert copied == packages
    assert "COPY pyproject.toml README.md /src/" in CONTAINERFILE  # the build reads both


def test_the_base_is_a_pinned_patch_release_and_the_user_is_not_root():
    (base,) = re.findall(r"^ARG BASE=(\S+)$", CONTAINERFILE, re.MULTILINE)
    assert re.search(r":\d+\.\d+\.\d+-slim-\w+$", base), base
    (user,) = re.findall(r"^USER (\d+):(\d+)$", CONTAINERFILE, re.MULTILINE)
    assert int(user[0]) > 0 and int(user[1]) > 0
    assert 'ENTRYPOINT ["headroom"]' in CONTAINERFILE


def test_the_files_the_entry_points_read_are_package_data():
    """What `headroom plan` and `headroom k8s render` open at run time ships in the wheel, hence in the image."""
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    needed = {
        "serving.k8s": ["base/gateway/deployment.yaml", "components/metric-mode/role.yaml"],
        "exporters.dcgm": ["daemonset.yaml", "counters.csv"],
        "autoscaler.capacity": ["atlases/llama-3.1-8b-h100.npz"],
        "serving.profiles": ["gpus.yaml"],
    }
    for package, files in needed.items():
        folder = ROOT / package.replace(".", "/")
        for file in files:
            assert (folder / file).exists(), f"{package}/{file}"
            assert any(Path(file).match(pattern) for pattern in data.get(package, [])), (
                f"{package}/{file} is not package data"
            )
