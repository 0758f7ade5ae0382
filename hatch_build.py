"""Build hook (hatchling): compiles logtap's kernel (``native/``, Rust with PyO3) with cargo and puts it in the
package as ``airflow_provider_logtap/_kernel.abi3.so``, one wheel for every CPython >= 3.10 of the platform.
Wheels and editable installs alike (``uv sync``, ``pip install -e .``); cargo must be on PATH (rustup)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: The library cargo builds, by platform, and the module name CPython imports.
BUILT = {"linux": "lib_kernel.so", "darwin": "lib_kernel.dylib"}
MODULE = "airflow_provider_logtap/_kernel.abi3.so"


class KernelBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return  # the sdist carries native/ as source
        root = Path(self.root)
        cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
        if not Path(cargo).exists():
            raise RuntimeError(
                "cargo is needed to build logtap's kernel (native/): install Rust, e.g. with rustup "
                "(https://rustup.rs), and build again"
            )
        target = Path(os.environ.get("CARGO_TARGET_DIR") or root / "native" / "target")
        env = {**os.environ, "CARGO_TARGET_DIR": str(target), "PYO3_PYTHON": sys.executable}
        subprocess.run(
            [cargo, "build", "--release", "--locked", "--manifest-path", str(root / "native" / "Cargo.toml")],
            check=True,
            env=env,
        )
        built = target / "release" / BUILT.get(sys.platform, "lib_kernel.so")
        module = root / MODULE
        shutil.copyfile(built, module)  # where an editable install imports it from, too
        build_data["pure_python"] = False
        build_data["tag"] = f"cp310-abi3-{sysconfig.get_platform().replace('-', '_').replace('.', '_')}"
        if version != "editable":
            build_data["force_include"][str(module)] = MODULE
