"""The `recsys` command: one entry point, a sub-command per job, `--help` on every one.

Each command group lives in its own module under ``training/commands/`` and imports its heavy
dependencies inside the command, so ``recsys --help`` stays fast.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit warns when BLAS is threaded

import typer  # noqa: E402

from training.commands import (  # noqa: E402
    customers,
    data,
    evaluate,
    experiments,
    generate,
    picks,
    privacy,
    serve,
    train,
)
from training.commands.common import command_group  # noqa: E402

app = command_group("loyalty-recsys: recommendations, segments and coupons for retail loyalty.",
                    name="recsys", add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress (INFO).")
         ) -> None:
    """loyalty-recsys: recommendations, segments and coupons for retail loyalty."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


generate.register(data.app)
app.add_typer(data.app, name="data")
app.add_typer(customers.app, name="customers")
app.add_typer(privacy.app, name="privacy")
app.add_typer(experiments.app, name="experiments")
for module in (evaluate, train, picks, serve):
    module.register(app)

if __name__ == "__main__":
    app()
