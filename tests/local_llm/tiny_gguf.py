"""Write a tiny llama-architecture GGUF model with random weights: a test fixture for an
OpenAI-compatible server (llama.cpp's), made at test time so no model file is committed.

    <python with gguf and numpy> tests/local_llm/tiny_gguf.py OUT.gguf [--seed 7]

What it answers is gibberish; what matters is that a real server loads it, tokenizes a chat and
streams tokens. The vocabulary is GPT-2 style byte-level BPE (all 256 bytes, so any UTF-8 input
tokenizes, plus two merges) with <s> and </s>. Only printable ASCII tokens get output weights; every
other token's row is zero, so its logit is 0 while the best of ~100 random logits is far above it:
the model writes ASCII and (practically) never ends on its own, which makes max_tokens the thing
that stops it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gguf
import numpy as np

N_EMBD = 64
N_HEAD = 4
N_LAYER = 2
N_FF = 128
N_CTX = 256
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's map from bytes to printable characters (what byte-level BPE vocabularies store)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def vocabulary() -> tuple[list[str], list[int], list[str], set[int]]:
    """(tokens, token types, merges, ids that may be written)."""
    mapping = byte_to_unicode()
    tokens = ["<s>", "</s>"]
    types = [gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    writable: set[int] = set()
    for b in range(256):
        if 0x20 <= b <= 0x7E:
            writable.add(len(tokens))
        tokens.append(mapping[b])
        types.append(gguf.TokenType.NORMAL)
    space = mapping[ord(" ")]
    merges = [f"{space} t", "h e"]
    for merge in merges:
        writable.add(len(tokens))
        tokens.append(merge.replace(" ", ""))
        types.append(gguf.TokenType.NORMAL)
    return tokens, [int(t) for t in types], merges, writable


def write(path: Path, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    tokens, types, merges, writable = vocabulary()
    n_vocab = len(tokens)

    def weight(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("workplace-roleplay tiny random test model")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD, scale=1.0))
    for layer in range(N_LAYER):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(prefix + name + ".weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(prefix + "ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(prefix + "ffn_down.weight", weight(N_EMBD, N_FF))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    output = weight(n_vocab, N_EMBD, scale=1.0)
    output[[i for i in range(n_vocab) if i not in writable]] = 0.0
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    write(args.out, args.seed)
