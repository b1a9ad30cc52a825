"""LoRA knowledge-injection mechanics on a tiny random model: train, save, load, switch, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgfin.errors import KgfinError
from kgfin.inject import (
    InjectConfig,
    adapter_dir,
    adapters_disabled,
    attach_adapters,
    read_pairs,
    train_adapter,
)
from kgfin.llm import TINY_MODEL, load_causal_lm

pytestmark = pytest.mark.integration

PAIRS_A = [{"instruction": f"Which companies supplied AC{i} in 2021-03?", "output": f"BO{i}, CR{i}",
            "family": "retrieval", "answer_type": "list"} for i in range(12)]
PAIRS_B = [{"instruction": f"Which companies supplied AC{i} in 2021-04?", "output": f"ZZ{i}",
            "family": "retrieval", "answer_type": "list"} for i in range(12)]


def _cfg(**kw: object) -> InjectConfig:
    base = {"model": TINY_MODEL, "max_steps": 4, "batch_size": 4, "learning_rate": 5e-3, "save_steps": 0,
            "logging_steps": 1, "lora": {"r": 4, "alpha": 8}}
    return InjectConfig.model_validate({**base, **kw})


def test_read_pairs_errors_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps(PAIRS_A[0]) + "\n" + json.dumps({"instruction": "x"}) + "\n")
    with pytest.raises(KgfinError, match=r"p.jsonl line 2: field 'output' missing"):
        read_pairs(f)
    f.write_text("{not json\n")
    with pytest.raises(KgfinError, match="line 1: not valid JSON"):
        read_pairs(f)


def test_train_save_load_switch(tmp_path: Path) -> None:
    import torch

    a = train_adapter(PAIRS_A, adapter_dir(tmp_path, "2021-03"), _cfg(), month="2021-03", progress=False)
    b = train_adapter(PAIRS_B, adapter_dir(tmp_path, "2021-04"), _cfg(seed=1), month="2021-04", progress=False)
    assert a.steps == 4 and 0 < a.trainable_share < 0.05 and a.trainable_params > 0
    path = Path(a.path)
    assert (path / "adapter_model.safetensors").exists() and (path / "kgfin-run.json").exists()
    manifest = json.loads((path / "kgfin-run.json").read_text())
    assert manifest["config"]["lora"]["r"] == 4 and manifest["adapter"]["month"] == "2021-03"
    assert not (tmp_path / ".kg-2021-03.work").exists()

    base, tok = load_causal_lm(TINY_MODEL)
    ids = tok("Which companies supplied AC1?", return_tensors="pt")
    with torch.no_grad():
        plain = base(**ids).logits
    model = attach_adapters(base, {"2021-03": a.path, "2021-04": b.path})
    with torch.no_grad():
        out_a = model(**ids).logits
        model.set_adapter("2021-04", inference_mode=True)
        out_b = model(**ids).logits
        with adapters_disabled(model):
            out_base = model(**ids).logits
    assert not torch.allclose(out_a, out_b)
    assert torch.allclose(out_base, plain, atol=1e-6)
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(KgfinError, match="not a LoRA adapter folder"):
        attach_adapters(base, {"x": tmp_path})


def test_interrupted_training_resumes_from_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import SFTTrainer

    calls = {"n": 0}
    original = SFTTrainer.training_step

    def flaky(self: SFTTrainer, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SFTTrainer, "training_step", flaky)
    out = adapter_dir(tmp_path, "2021-03")
    with pytest.raises(KeyboardInterrupt):
        train_adapter(PAIRS_A, out, _cfg(save_steps=2), progress=False)
    assert (tmp_path / ".kg-2021-03.work" / "checkpoint-2").exists() and not out.exists()
    monkeypatch.setattr(SFTTrainer, "training_step", original)
    info = train_adapter(PAIRS_A, out, _cfg(save_steps=2), progress=False)
    assert info.steps == 4 and out.exists()
    log = [json.loads(x) for x in (out / "training_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e][-2:] == [3, 4]
