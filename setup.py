"""Build hook: ship the top-level kernels/ folder inside the package as nnhp/kernels/.

Everything else about the package is declared in pyproject.toml. The CUDA sources
live at the top of the repository (where the design puts them), but an installed
nnhp must find them next to its modules: ``nnhp.cuda.kernel_dir()`` looks in
``nnhp/kernels`` first, then in a source checkout's ``kernels/``.
"""
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

KERNEL_PATTERNS = ("*.cu", "*.cuh")


class build_py_with_kernels(build_py):
    def run(self):
        super().run()
        source = pathlib.Path(__file__).resolve().parent / "kernels"
        target = pathlib.Path(self.build_lib) / "nnhp" / "kernels"
        target.mkdir(parents=True, exist_ok=True)
        for pattern in KERNEL_PATTERNS:
            for path in sorted(source.glob(pattern)):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": build_py_with_kernels})
