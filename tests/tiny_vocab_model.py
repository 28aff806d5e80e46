"""A tiny BERT-style model saved to disk, whose input word vectors fall into known groups.

Used by the vocabulary, label-map and service tests: it loads in well under a second, in
any process (a server started by a test sees it too), and its vocabulary clusters are known:
each word of a group is its group's direction plus a little seeded noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GROUPS = {
    "animal": ["cat", "dog", "cow", "horse", "sheep", "goat", "mouse", "tiger"],
    "food": ["bread", "cheese", "apple", "rice", "soup", "cake", "pasta", "salad"],
    "metal": ["iron", "copper", "gold", "silver", "zinc", "steel", "tin", "lead"],
}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]"]
SUBWORDS = ["##s", "##ing", "##ed"]
SHORT = ["a", "x"]
DIM = 16


def words() -> list[str]:
    """Every group word, in vocabulary order."""
    return [w for ws in GROUPS.values() for w in ws]


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write the model (config, safetensors weights, WordPiece tokenizer) into ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + words() + SUBWORDS + SHORT
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=64)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=DIM, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(seed)
    model = BertModel(cfg)
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM, dtype=np.float32)[: len(GROUPS)] * 4.0
    W = rng.normal(0, 0.3, size=(len(vocab), DIM)).astype(np.float32)
    for g, ws in enumerate(GROUPS.values()):
        for w in ws:
            W[vocab.index(w)] += centres[g]
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.copy_(torch.from_numpy(W))
    model.save_pretrained(str(folder), safe_serialization=True)
    tok.save_pretrained(str(folder))
    return folder
