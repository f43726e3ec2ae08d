"""Wheels for benchmarks/gpu.py on a GPU machine that reaches no package registry.

The GPU machines lent to this project run an image that already holds JAX with its CUDA plugin
and much else (`IMAGE`, as its documentation listed it on 2026-11-17) but reach no package
index, so `pip install -e '.[cuda]'` fails there. What gpu.py imports beyond the image
(`WHEELS`; the suite's gpu.py test checks that nothing else is imported) is downloaded here, on a
machine that reaches PyPI, into `.whl/` (git-ignored), for the GPU image's Python:

    python benchmarks/gpu_wheels.py [--python 3.12]

then, on the GPU machine, from the repository root, `.whl` carried:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:src python3 benchmarks/gpu.py --work /tmp/gpu

(diffrl itself runs from `src/`: installing it would make pip look for its dependencies.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

# distributions the GPU image holds that gpu.py's imports reach (a subset of its list)
IMAGE = (
    "jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda13-pjrt", "flax", "optax", "chex",
    "orbax-checkpoint",
    "numpy", "scipy", "ml-dtypes", "opt-einsum", "h5py", "matplotlib", "contourpy", "cycler",
    "fonttools", "kiwisolver", "pillow", "pyparsing", "python-dateutil", "six", "packaging",
    "tqdm", "msgpack", "flatbuffers", "typer", "click", "rich", "shellingham", "markdown-it-py",
    "mdurl", "pygments", "protobuf", "cloudpickle", "typing-extensions", "imageio", "absl-py",
    "etils", "treescope", "tensorstore", "toolz", "zipp", "pyyaml", "simplejson", "humanize",
    "aiofiles", "fsspec", "psutil", "wrapt", "certifi", "charset-normalizer", "urllib3", "filelock",
    "setuptools",
)  # fmt: skip
# imported when installed (tensorboardX's S3 writer and what it pulls in), not needed: gpu.py
# --tiny ran in a venv holding only IMAGE and WHEELS
OPTIONAL = ("boto3", "botocore", "jmespath", "s3transfer", "cffi", "pycparser")
WHEELS = (
    "gymnasium==1.4.0", "farama-notifications==0.0.6",
    "mujoco==4.0.0", "mujoco-core==4.0.0", "mujoco-studio==4.0.0", "glfw==2.11.0",
    "pyopengl==3.1.10", "websockets==15.0.1",
    "minari==0.5.4", "tensorboardx==2.6.5",
    "pydantic==2.13.4", "pydantic-core==2.46.4", "annotated-types==0.7.0",
    "typing-inspection==0.4.2",
)  # fmt: skip
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "any")  # fmt: skip


def canonical(name: str) -> str:
    return name.split("==")[0].lower().replace("_", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.12", help="the GPU image's Python (3.12.3)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / ".whl")
    args = parser.parse_args()
    platforms = [x for p in PLATFORMS for x in ("--platform", p)]
    for stale in args.out.glob("*.whl"):  # another Python's wheels: two of a kind stop pip there
        stale.unlink()
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", args.python, "--implementation",
                    "cp", *platforms, "-d", str(args.out), *WHEELS], check=True)  # fmt: skip
    size = sum(f.stat().st_size for f in args.out.glob("*.whl"))
    print(f"{len(WHEELS)} wheels, {size / 2**20:.1f} MiB, in {args.out}")


if __name__ == "__main__":
    main()
