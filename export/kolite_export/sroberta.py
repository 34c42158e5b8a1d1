"""The ko-sroberta sentence-type classifier (seed 003): RoBERTa encoder + masked mean pooling + dropout + linear.

This mirrors the training code behind the seed: ``AutoModel.from_pretrained("jhgan/ko-sroberta-multitask")`` as
``encoder``, sentence-transformers style mean pooling over the attention mask, then ``dropout`` and ``classifier``.
The checkpoint is this module's ``state_dict()`` saved as ``best.pt``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import RobertaConfig, RobertaModel

__all__ = ["SentenceTypeClassifier", "masked_mean_pooling"]


def masked_mean_pooling(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where ``attention_mask`` is 1 (padding never contributes)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class SentenceTypeClassifier(nn.Module):
    def __init__(self, encoder_config: RobertaConfig, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        # Eager attention traces the padding mask into the graph explicitly (no SDPA fast path that drops it).
        encoder_config._attn_implementation = "eager"
        self.encoder = RobertaModel(encoder_config)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder_config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.classifier(self.dropout(masked_mean_pooling(hidden, attention_mask)))
