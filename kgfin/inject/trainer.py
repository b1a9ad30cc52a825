"""Knowledge injection: one LoRA adapter per month, trained on that month's instruction pairs.

The pairs are supervised as chat turns (user = instruction, assistant = answer) with the
loss on the answer tokens only, by TRL's ``SFTTrainer`` with a PEFT LoRA adapter.
Training checkpoints into a work folder and resumes from it; the finished adapter is
written to ``<adapters>/kg-YYYY-MM/`` (renamed into place when complete) together with
``kgfin-run.json`` (config, pairs file hash, parameter counts, speed) and the loss log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kgfin.errors import KgfinError
from kgfin.inject.config import InjectConfig
from kgfin.runinfo import write_manifest

__all__ = ["AdapterInfo", "adapter_dir", "read_pairs", "sha256_file", "train_adapter"]

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("instruction", "output")


@dataclass
class AdapterInfo:
    """What one adapter training run did."""

    path: str
    month: str | None
    n_pairs: int
    steps: int
    seconds: float
    seconds_per_step: float
    tokens_per_second: float
    peak_rss_mb: float
    trainable_params: int
    total_params: int
    trainable_share: float
    final_loss: float | None
    pairs_sha256: str | None


def adapter_dir(adapters_root: str | Path, month: str) -> Path:
    """Where month ``YYYY-MM``'s knowledge adapter lives: ``<root>/kg-YYYY-MM``."""
    return Path(adapters_root) / f"kg-{month}"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Instruction pairs from a JSONL file; errors name the file, line and missing field."""
    pairs = []
    with open(path) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KgfinError(f"{path} line {line_no}: not valid JSON ({exc.msg})") from None
            for key in REQUIRED_KEYS:
                if not isinstance(rec.get(key), str) or not rec[key].strip():
                    raise KgfinError(f"{path} line {line_no}: field '{key}' missing or empty")
            pairs.append(rec)
    if not pairs:
        raise KgfinError(f"{path}: no instruction pairs")
    return pairs


def _check_trainable(model: Any) -> tuple[int, int]:
    """Assert that exactly the LoRA matrices train; return (trainable, total) parameter counts."""
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    total = sum(p.numel() for p in model.parameters())
    not_lora = [n for n in trainable if "lora_" not in n]
    if not_lora:
        raise AssertionError(f"parameters outside the LoRA adapter would train: {not_lora[:5]}")
    expected = 0
    for module in model.modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            a, b = module.lora_A["default"], module.lora_B["default"]
            expected += a.weight.numel() + b.weight.numel()
    if sum(trainable.values()) != expected or expected == 0:
        raise AssertionError(f"{sum(trainable.values())} trainable parameters, expected {expected} in LoRA matrices")
    return expected, total


def train_adapter(
    pairs: list[dict[str, Any]],
    out_dir: str | Path,
    cfg: InjectConfig | None = None,
    *,
    month: str | None = None,
    pairs_sha256: str | None = None,
    resume: bool = True,
    progress: bool = True,
) -> AdapterInfo:
    """Train a LoRA adapter on ``pairs`` and save it to ``out_dir``.

    Checkpoints go to a sibling work folder ``.<name>.work``; with ``resume`` a run that was
    interrupted continues from its last checkpoint. Returns what the run did.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from kgfin.llm.models import load_causal_lm

    cfg = cfg or InjectConfig()
    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.work"
    if not resume:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    dataset = Dataset.from_list([
        {"prompt": [{"role": "user", "content": p["instruction"]}],
         "completion": [{"role": "assistant", "content": p["output"]}]}
        for p in pairs
    ])
    import torch

    model, tok = load_causal_lm(cfg.model, seed=cfg.seed)
    cuda = torch.cuda.is_available()
    args = SFTConfig(
        use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(),
        activation_checkpointing=cfg.activation_checkpointing,
        output_dir=str(work), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, lr_scheduler_type="linear", warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no", save_steps=cfg.save_steps or 500,
        save_total_limit=1, report_to=[], max_length=cfg.max_length, completion_only_loss=True,
        seed=cfg.seed, data_seed=cfg.seed, disable_tqdm=not progress, dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok, peft_config=lora)
    trainable, total = _check_trainable(trainer.model)
    log.info("LoRA adapter: %d trainable of %d parameters (%.2f %%)", trainable, total, 100 * trainable / total)

    checkpoints = sorted(int(p.name.split("-")[1]) for p in work.glob("checkpoint-*") if p.name.split("-")[1].isdigit())
    resumed_at = checkpoints[-1] if checkpoints and resume else 0
    if resumed_at:
        log.info("resuming from checkpoint at step %d", resumed_at)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(work / f"checkpoint-{resumed_at}") if resumed_at else None)
    seconds = time.perf_counter() - t0
    state = trainer.state
    steps_run = max(1, state.global_step - resumed_at)
    losses = [h["loss"] for h in state.log_history if "loss" in h]

    info = AdapterInfo(
        path=str(out_dir), month=month, n_pairs=len(pairs), steps=state.global_step, seconds=seconds,
        seconds_per_step=seconds / steps_run, tokens_per_second=state.num_input_tokens_seen / max(seconds, 1e-9),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        trainable_params=trainable, total_params=total, trainable_share=trainable / total,
        final_loss=losses[-1] if losses else None, pairs_sha256=pairs_sha256,
    )
    # under accelerate (DDP) every process trains; only the main one writes the adapter, the others wait
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        trainer.model.save_pretrained(tmp)
        with open(tmp / "training_log.jsonl", "w") as f:
            for entry in state.log_history:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
        write_manifest(tmp, "kgfin inject", cfg, extra={"adapter": {k: v for k, v in asdict(info).items() if k != "path"}})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return info
