"""What every command group of the ``kgfin`` CLI shares: the app, the consoles, the common options and the recipe
loading (``kgfin.config``'s rule). Heavy libraries are imported inside the commands, so ``kgfin --help`` is instant."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from kgfin.errors import KgfinError

__all__ = ["AdaptersOption", "AlignedOption", "CliError", "MonthsOption", "RecipeOption", "SetOption", "StoreOption",
           "app", "console", "configs", "err_console", "evaluate_app", "overrides", "reading_store"]

app = typer.Typer(
    help="kgfin: graph-aware financial LLMs (knowledge graphs, LoRA injection, market alignment, ripple evaluation).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
evaluate_app = typer.Typer(help="Evaluate: memory accuracy of knowledge adapters, ripple prediction tables.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")



console = Console()
err_console = Console(stderr=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field of the recipe (repeatable): --set KEY=VALUE, with a dotted KEY "
                                 "for a nested field, e.g. section.field=value."),
]
RecipeOption = Annotated[
    list[Path] | None,
    typer.Option("--config", help="Recipe (YAML; repeatable, later files win): the command reads its own sections "
                                  "from it, e.g. kgfin/recipes/demo.yaml or the command's kgfin/recipes/*.yaml. "
                                  "Default: the config defaults (docs/pipeline.md, Recipes)."),
]


def overrides(flags: dict[str, object], extra: list[str] | None) -> list[str]:
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + list(extra or [])


def configs(classes: dict[str, Any], recipes: list[Path] | None, overrides: list[str]) -> dict[str, Any]:
    """The command's sections (the first is its own) from ``recipes`` and ``--set`` overrides (kgfin.config)."""
    from kgfin.config import load_sections
    from kgfin.pipeline import RECIPE_KEYS

    return load_sections(classes, recipes or [], overrides, RECIPE_KEYS)


StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Graph store: a directory for the embedded FalkorDB, or bolt://host:7687 for "
                                 "Neo4j. Default: $KGFIN_GRAPH_URI, then KGFIN_GRAPH_URI in ./.env, then "
                                 ".kgfin/graph under the current directory (so another directory means "
                                 "another store); each command prints the store it used."),
]


MonthsOption = Annotated[list[str], typer.Option("--month", "-m", help="YYYY-MM or YYYY-MM..YYYY-MM (repeatable).")]

AdaptersOption = Annotated[Path, typer.Option(help="Folder of knowledge adapters (kg-YYYY-MM/).")]
AlignedOption = Annotated[Path, typer.Option(help="The final/ folder of `kgfin align`.")]



class CliError(KgfinError):
    """An expected failure found by the CLI itself."""


def _version(value: bool) -> None:
    if value:
        from kgfin import __version__

        console.print(f"kgfin {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")] = 0,
) -> None:
    from rich.logging import RichHandler

    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)])


@contextmanager
def reading_store(store: str | None) -> Iterator[Any]:
    """The graph store a command reads months from: one that must exist already (only ``graph build`` creates one),
    named on stderr so that a user who ran the build elsewhere sees which store was used."""
    from kgfin.store import open_store

    with open_store(store, create=False) as st:
        err_console.print(f"graph store: {st.describe()}", highlight=False)
        yield st
