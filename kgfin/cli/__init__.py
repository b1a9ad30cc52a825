"""The ``kgfin`` command line: parses arguments, calls the library, prints a summary.

One module per command group (:mod:`kgfin.cli.data`, :mod:`~kgfin.cli.graph`,
:mod:`~kgfin.cli.knowledge`, :mod:`~kgfin.cli.ripple`, :mod:`~kgfin.cli.run`), registered on the one
Typer ``app`` of :mod:`kgfin.cli._app`. Heavy libraries are imported inside the commands so
that ``kgfin --help`` is instant.
"""

from __future__ import annotations

from kgfin.cli import data, graph, knowledge, ripple, run  # noqa: F401  (registers the commands)
from kgfin.cli._app import app, err_console
from kgfin.errors import KgfinError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: expected errors become one-line messages, exit code 2."""
    import warnings

    # transformers' own deprecation notice, raised from inside transformers/PEFT on every model load
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        app()
    except (KgfinError, FileNotFoundError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: re-run the same command to resume (finished stages and months are kept)")
        raise SystemExit(130) from None
