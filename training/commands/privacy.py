"""`recsys privacy audit`: model versions that still hold erased customers, and retiring them."""

from __future__ import annotations

from typing import Annotated

import typer

from training.commands.common import command_group, fail_cleanly

app = command_group("Privacy: what erasures leave behind in older model versions.")


@app.command("audit")
def audit_cmd(
    model: Annotated[str, typer.Option(help="Registered model name.")] = "loyalty-recsys",
    retire: Annotated[bool, typer.Option(
        "--retire", help="Delete every version that holds an erased customer and is not "
                         "behind an alias (champion, challenger).")] = False,
) -> None:
    """List each registered version with the number of erased customers its bundle holds."""
    from training.jobs import privacy
    from training.tracking import event_store, setup

    with fail_cleanly():
        setup(model)
        store = event_store()
        rows = privacy.audit(model, store)
        typer.echo(f"{'version':>8}  {'created':19}  {'erased held':>11}  aliases")
        for row in rows:
            typer.echo(f"{row.version:>8}  {row.created:19}  {row.erased_customers:>11}  "
                       f"{','.join(row.aliases) or '-'}")
        holding = [r for r in rows if r.erased_customers]
        if not retire:
            if holding:
                typer.echo(f"{len(holding)} version(s) hold erased customers; --retire deletes "
                           "those not behind an alias.")
            return
        for row in holding:
            if row.aliases:
                typer.echo(f"kept version {row.version}: it is the {','.join(row.aliases)} "
                           "(promote a newer version, then run again)")
                continue
            privacy.retire(model, row.version)
            typer.echo(f"retired version {row.version}")
