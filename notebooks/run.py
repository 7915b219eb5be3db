"""Execute the notebooks top to bottom and print how long each took (``make notebooks``).

    .venv/bin/python notebooks/run.py [NOTEBOOK ...] [--timeout SECONDS] [--out DIR]

Each notebook runs in a fresh kernel on *this* Python (a kernel spec written to a temporary
folder, so another "python3" kernel installed on the machine is never picked up), with the
notebooks folder as working directory. Outputs are not written back: the notebooks stay
stripped in git; ``--out DIR`` saves executed copies there. Exits 1 when a cell fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
KERNEL = "loyalty-recsys"


def execute(path: Path, timeout: int = 600) -> tuple[nbformat.NotebookNode, float]:
    """Run the notebook at ``path`` in a new kernel; return it executed and the seconds taken.

    Raises ``nbclient.exceptions.CellExecutionError`` naming the failing cell.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the kernel inherits the environment
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as specs:
        write_kernel_spec(Path(specs) / KERNEL)  # argv: this interpreter (sys.executable)
        # Unix sockets in the temp dir where possible: no TCP port (ipykernel warns about it).
        ipc = {"transport": "ipc", "ip": str(Path(specs) / "kernel")} if os.name == "posix" \
            else {}
        km = AsyncKernelManager(kernel_name=KERNEL, **ipc,
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[specs]))
        client = NotebookClient(nb, km=km, timeout=timeout,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute(cleanup_kc=True)  # also shuts the kernel down
    return nb, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=NOTEBOOKS,
                        help="notebooks to run (default: every NN_*.ipynb here)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    parser.add_argument("--out", type=Path, help="also save the executed notebooks here")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    total = 0.0
    for path in args.notebooks:
        try:
            nb, seconds = execute(path.resolve(), args.timeout)
        except CellExecutionError as exc:
            print(f"{path.name}: FAILED\n{exc}", file=sys.stderr)  # noqa: T201
            return 1
        total += seconds
        print(f"{path.name}: ok in {seconds:.0f}s", flush=True)  # noqa: T201
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.out / path.name)
    print(f"{len(args.notebooks)} notebook(s) in {total:.0f}s")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
