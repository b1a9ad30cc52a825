"""docs/pipeline.md describes pipeline.json as the code writes it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from kgfin.pipeline import StageRecord


def test_pipeline_doc_shows_stages_as_a_list_of_stage_records() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "pipeline.md").read_text()
    block = re.search(r'"stages": (.)\n(.*?)\n  [\]}]', doc, re.S)
    assert block is not None and block.group(1) == "[", "pipeline.json's stages is a list (run order)"
    first = block.group(2).splitlines()[0]  # the first stage's record, on one line
    keys = re.findall(r'"(\w+)":', first)
    fields = [f.name for f in dataclasses.fields(StageRecord) if f.name != "reused"]
    assert keys == fields
