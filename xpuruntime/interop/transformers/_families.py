"""The Hugging Face model families whose modules ``patch`` knows, by class.

A family names the classes of one ``transformers.models.<name>.modeling_<name>``
module: its RMSNorm (and whether it scales by ``1 + weight``, as Gemma's do), its
gated MLP, its attention (which calls the module's ``apply_rotary_pos_emb``) and its
causal-LM head. Classes are looked up in modules already imported (a model's classes
are, once the model exists), so nothing here imports a family the model is not of,
and a class a transformers version lacks is simply absent.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Family:
    name: str
    module: str                 # transformers.models.<module>.modeling_<module>
    rms_norm: Optional[str]     # class name of its RMSNorm
    offset_norm: bool           # RMSNorm scales by (1 + weight)
    mlp: Optional[str]          # gate_proj / up_proj / down_proj MLP
    attention: str              # calls the module-level apply_rotary_pos_emb
    causal_lm: str

    @property
    def path(self) -> str:
        return f"transformers.models.{self.module}.modeling_{self.module}"

    def cls(self, attr: str):
        """The family's class for ``attr`` ("rms_norm", "mlp", ...) if its module is loaded."""
        name = getattr(self, attr)
        module = sys.modules.get(self.path)
        return None if name is None or module is None else getattr(module, name, None)

    def rope_function(self):
        module = sys.modules.get(self.path)
        return None if module is None else getattr(module, "apply_rotary_pos_emb", None)


FAMILIES = (
    Family("Llama", "llama", "LlamaRMSNorm", False, "LlamaMLP", "LlamaAttention",
           "LlamaForCausalLM"),
    Family("Mistral", "mistral", "MistralRMSNorm", False, "MistralMLP", "MistralAttention",
           "MistralForCausalLM"),
    Family("Qwen2", "qwen2", "Qwen2RMSNorm", False, "Qwen2MLP", "Qwen2Attention",
           "Qwen2ForCausalLM"),
    Family("Qwen3", "qwen3", "Qwen3RMSNorm", False, "Qwen3MLP", "Qwen3Attention",
           "Qwen3ForCausalLM"),
    Family("Gemma", "gemma", "GemmaRMSNorm", True, "GemmaMLP", "GemmaAttention",
           "GemmaForCausalLM"),
    Family("Gemma2", "gemma2", "Gemma2RMSNorm", True, "Gemma2MLP", "Gemma2Attention",
           "Gemma2ForCausalLM"),
    Family("Gemma3", "gemma3", "Gemma3RMSNorm", True, "Gemma3MLP", "Gemma3Attention",
           "Gemma3ForCausalLM"),
    Family("GPT-NeoX", "gpt_neox", None, False, None, "GPTNeoXAttention", "GPTNeoXForCausalLM"),
)


def family_of(module, attr: str) -> Optional[Family]:
    """The family whose ``attr`` class ``module`` is an instance of, with that class's
    own forward (a subclass that overrides forward is not the family's to replace)."""
    for family in FAMILIES:
        cls = family.cls(attr)
        if cls is not None and isinstance(module, cls) and type(module).forward is cls.forward:
            return family
    return None


def _names(attr: str) -> str:
    return ", ".join(f.name for f in FAMILIES if getattr(f, attr) is not None)


def supported() -> str:
    """What ``patch`` replaces, for error messages and docs."""
    offset = ", ".join(f.name for f in FAMILIES if f.offset_norm)
    return (f"RMSNorm of {_names('rms_norm')} (the {offset} ones as 1 + weight); "
            "torch.nn.LayerNorm with weight and bias over the last axis (GPT-NeoX and any model); "
            f"SwiGLU / GeGLU MLPs (gate_proj, up_proj, down_proj) of {_names('mlp')}; "
            f"rotary embeddings (apply_rotary_pos_emb) in the attention of {_names('attention')}; "
            "the loss of causal LMs that use transformers' ForCausalLMLoss, fused with the "
            f"LM head for {_names('causal_lm')}")
