"""Several month adapters on one base model: load once, switch by name in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgfin.errors import KgfinError

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

__all__ = ["adapters_disabled", "attach_adapters", "lora_weights"]


def attach_adapters(base: PreTrainedModel, adapters: Mapping[str, str | Path], trainable: bool = False) -> PeftModel:
    """Wrap ``base`` with the named LoRA adapters (frozen unless ``trainable``); the first is active.

    Switch with ``model.set_adapter(name, inference_mode=True)`` (without ``inference_mode``
    PEFT makes the activated adapter trainable); ``with adapters_disabled(model):`` gives the
    base. Note that PEFT modifies ``base`` in place.
    """
    from peft import PeftModel

    if not adapters:
        raise KgfinError("no adapters given")
    model = None
    for name, path in adapters.items():
        path = Path(path)
        if not (path / "adapter_config.json").exists():
            raise KgfinError(f"{path} is not a LoRA adapter folder (no adapter_config.json); train it with `kgfin inject`")
        if model is None:
            model = PeftModel.from_pretrained(base, path, adapter_name=name, is_trainable=trainable)
        else:
            model.load_adapter(path, adapter_name=name, is_trainable=trainable)
    assert model is not None
    model.set_adapter(next(iter(adapters)), inference_mode=not trainable)
    if not trainable:  # PEFT leaves the base's flags as they were: freeze everything for inference
        for p in model.parameters():
            p.requires_grad_(False)
    model.eval()
    return model


@contextmanager
def adapters_disabled(model: PeftModel) -> Iterator[PeftModel]:
    """Run ``model`` as its base model, then restore every parameter's ``requires_grad``.

    PEFT's own ``disable_adapter()`` makes the active adapter trainable again on exit, which
    would silently unfreeze a frozen knowledge adapter.
    """
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        with model.disable_adapter():
            yield model
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])


@contextmanager
def lora_weights(model: PeftModel, state: Mapping[str, Any]) -> Iterator[PeftModel]:
    """Run ``model`` with its LoRA weights set to ``state`` (a PEFT state dict, e.g. a warm start's), then put its own
    back. The weights are copied in place, so an optimiser's references to them stay valid."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    own = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    set_peft_model_state_dict(model, dict(state))
    try:
        yield model
    finally:
        set_peft_model_state_dict(model, own)
