"""Which model answers: the base model with a month's knowledge merged, and with alignment on top.

* :func:`knowledge_model`: the base model with ``graph_month``'s knowledge adapter merged in and
  frozen (the reference of alignment, and the ``knowledge`` method of the evaluation);
* :func:`merge_alignment`: that model plus what ``kgfin align`` learned (its ``final/`` folder:
  an alignment LoRA or a delta on every weight);
* :func:`learned_alignment`: what a ``final/`` folder learned, in the form the alignment loop
  carries (``experimental.init_from``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError
from kgfin.inject.trainer import adapter_dir

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["knowledge_model", "learned_alignment", "merge_alignment"]


def knowledge_model(cfg: AlignConfig, adapters_root: str | Path, graph_month: str
                    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model with ``graph_month``'s knowledge adapter merged in, frozen (the base alone if not ``knowledge``),
    on ``cfg.device``."""
    import torch
    from peft import PeftModel

    from kgfin.llm.models import load_causal_lm, pick_device

    torch.manual_seed(cfg.seed)
    model, tok = load_causal_lm(cfg.model, seed=cfg.seed)
    if cfg.knowledge:
        path = adapter_dir(adapters_root, graph_month)
        if not (path / "adapter_config.json").exists():
            raise AlignInputError(
                f"no knowledge adapter for graph month {graph_month} at {path}: train it with "
                f"`kgfin inject --month {graph_month}`, or run with --set knowledge=false")
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    model.to(pick_device(cfg.device))
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return model, tok


def merge_alignment(model: PreTrainedModel, final: Path | None) -> PreTrainedModel:
    """``model`` with the alignment of ``final`` (``OUT/final`` of ``kgfin align``) merged into its weights."""
    import torch

    if final is None or not final.exists():
        raise AlignInputError(f"aligned model folder {final} not found: run `kgfin align` first")
    if (final / "align-adapter" / "adapter_config.json").exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, final / "align-adapter").merge_and_unload()
    elif (final / "backbone-delta.safetensors").exists():
        from safetensors.torch import load_file

        delta = load_file(str(final / "backbone-delta.safetensors"))
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.add_(delta[name].to(p.device))
    else:
        raise AlignInputError(f"{final} holds neither align-adapter/ nor backbone-delta.safetensors")
    model.eval()
    return model


def learned_alignment(cfg: AlignConfig, final: str | Path) -> dict[str, Any]:
    """What an earlier run's ``final/`` folder learned (LoRA weights or backbone delta), checked against ``cfg``."""
    from safetensors.torch import load_file

    final = Path(final)
    if cfg.train == "lora":
        path = final / "align-adapter"
        if not (path / "adapter_config.json").exists():
            raise AlignInputError(f"init_from: {path} holds no alignment LoRA (was that run trained with train=lora?)")
        saved = json.loads((path / "adapter_config.json").read_text())
        if (saved.get("r"), saved.get("lora_alpha")) != (cfg.lora.r, cfg.lora.alpha):
            raise AlignInputError(f"init_from: {path} has LoRA r={saved.get('r')}, alpha={saved.get('lora_alpha')}; "
                                  f"this recipe has r={cfg.lora.r}, alpha={cfg.lora.alpha}")
        return dict(load_file(str(path / "adapter_model.safetensors")))
    path = final / "backbone-delta.safetensors"
    if not path.exists():
        raise AlignInputError(f"init_from: {path} not found (was that run trained with train=backbone?)")
    return dict(load_file(str(path)))
