"""Importers: the public sources a researcher has, turned into kgfin's validated tables.

Each importer reads a source in the shape its publisher ships it, dates every fact by
when it became public, writes one kgfin table into a data directory (validated, atomically,
byte-identical for the same input) and returns an :class:`ImportReport` that counts every
row left out, by reason (also saved as ``<out_dir>/imports/<table>.json``). Bad input
raises :class:`~kgfin.data.validation.DataValidationError` naming file, line and column,
and nothing is written. See "From public sources" in ``docs/data-formats.md``.
"""

from kgfin.data.importers.common import ImportReport
from kgfin.data.importers.french import import_french_factors
from kgfin.data.importers.news import import_news
from kgfin.data.importers.patents import import_patentsview, normalize_name, patentsview_files
from kgfin.data.importers.prices import import_prices
from kgfin.data.importers.sec import import_13f, import_insiders, read_identifier_map
from kgfin.data.importers.supply import import_supply_links

__all__ = [
    "ImportReport", "import_13f", "import_french_factors", "import_insiders", "import_news", "import_patentsview",
    "import_prices", "import_supply_links", "normalize_name", "patentsview_files", "read_identifier_map",
]
