"""The custom ko-sroberta checkpoint (003) as the PyTorch original: ``kolite_export``'s layout loader builds the
same module the seed's training code defines (encoder + masked mean pooling + dropout + linear) from ``best.pt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["load_sroberta"]


class _InputsFilter:
    """Calls the module with the inputs it declares only (the tokenizer may also emit token_type_ids)."""

    def __init__(self, module: Any, inputs: tuple[str, ...]) -> None:
        self.module, self.inputs = module, inputs

    def eval(self) -> _InputsFilter:
        self.module.eval()
        return self

    def __call__(self, **encoded: Any) -> Any:
        return self.module(*[encoded[name] for name in self.inputs])


def load_sroberta(folder: str) -> tuple[Any, Any, dict[int, str]]:
    """(tokenizer, callable model returning logits, id2label) for a ``best.pt`` + ``tokenizer/`` folder."""
    try:
        from kolite_export.layouts.sroberta import SRobertaMeanPooling
    except ImportError as exc:
        raise ImportError("the 003 original needs the export extra: pip install '.[export]'") from exc
    checkpoint = SRobertaMeanPooling().load(Path(folder))
    model = _InputsFilter(checkpoint.module, checkpoint.inputs)
    return checkpoint.tokenizer, model, dict(enumerate(checkpoint.labels))
