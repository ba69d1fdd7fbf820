"""Tiny randomly initialised models of the GPU profiles' architectures, built in code.

Following TRL's ``scripts/generate_tiny_models``: a Qwen2, Gemma-3 or Llama config a few
dozen parameters wide, with the chat template TRL ships for that family
(``trl/chat_templates/*.jinja``) and a small word-level tokenizer holding that template's
special tokens. Saved as an ordinary folder, such a model goes through exactly the loading,
chat-template and rollout code that the real hub models take — without a download.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .prompts import assistant_messages, user_messages
from .task_family import REAL_USER, ScriptedAssistant, ScriptedUser
from .toy_tasks import CORPUS_ASSISTANTS, TASKS
from .world import scripted_dialogue, train_word_tokenizer

FAMILIES = {
    # family: (TRL template, special tokens: pad, unk, bos, turn end, others)
    "qwen2": ("qwen2_5.jinja", ("<|endoftext|>", "<unk>", "<|endoftext|>", "<|im_end|>", "<|im_start|>")),
    "gemma3": ("gemma3.jinja", ("<pad>", "<unk>", "<bos>", "<end_of_turn>", "<start_of_turn>")),
    "llama": ("llama3_2.jinja", ("<|finetune_right_pad_id|>", "<unk>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>")),
}


def trl_chat_template(name: str) -> str:
    """The text of a chat template shipped with TRL (e.g. ``qwen2_5.jinja``)."""
    return resources.files("trl").joinpath("chat_templates", name).read_text()


def train_bpe_tokenizer(texts: list[str], specials: tuple[str, ...], chat_template: str, vocab_size: int = 600) -> Any:
    """A small byte-level BPE tokenizer (the kind Qwen2 and Llama 3 use) with ``specials`` and ``chat_template``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    pad, unk, bos, end = specials[:4]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    uniq = list(dict.fromkeys(specials))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=uniq, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, unk_token=unk, bos_token=bos, eos_token=end,
                                   additional_special_tokens=uniq[4:], padding_side="left", clean_up_tokenization_spaces=False)
    fast.chat_template = chat_template
    return fast


def build_tiny_model(family: str, folder: str | Path, seed: int = 0, layout: Any = None) -> Path:
    """Build, save and return a tiny random ``family`` model with its tokenizer and TRL chat template.

    ``layout`` (a :class:`calirl_lite.memory.Layout`, e.g. ``LAYOUTS["Qwen/Qwen2.5-1.5B-Instruct"]``) gives it a real
    model's shapes instead — random weights of the real config, saved in bf16 — for measuring memory and speed
    without a download; the tokenizer stays the small one, the vocabulary the real one's size.
    """
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if family not in FAMILIES:
        raise ValueError(f"unknown tiny model family {family!r}; known: {', '.join(FAMILIES)}")
    template_name, specials = FAMILIES[family]
    template = trl_chat_template(template_name)
    rng = np.random.default_rng(seed)
    probe = train_word_tokenizer([], special_tokens=specials, chat_template=template)
    texts = []
    for task in TASKS.values():
        for _ in range(20):
            goal = task.sample_goal(rng)
            d = scripted_dialogue(task, goal, ScriptedUser(task, goal, REAL_USER, rng), ScriptedAssistant(task, CORPUS_ASSISTANTS["sloppy"], rng), 8)
            texts.append(probe.apply_chat_template(assistant_messages(d.messages), tokenize=False))
            texts.append(probe.apply_chat_template(user_messages(task, goal, d.messages), tokenize=False))
    tokenizer = train_bpe_tokenizer(texts, specials, template)
    ids = {"vocab_size": max(tokenizer.get_vocab().values()) + 1, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1}
    if layout is not None:
        small = {k: v for k, v in layout.config().items() if k not in ("vocab_size", "tie_word_embeddings")}
        ids.update(vocab_size=max(ids["vocab_size"], layout.vocab), tie_word_embeddings=layout.tied)
    torch.manual_seed(seed)
    torch.set_default_dtype(torch.bfloat16 if layout is not None else torch.float32)
    try:  # a real layout's random init takes minutes on a CPU (2 B parameters), well under a second on a GPU
        with torch.device("cuda" if layout is not None and torch.cuda.is_available() else "cpu"):
            if family == "qwen2":
                model: Any = Qwen2ForCausalLM(Qwen2Config(**small, **ids))
            elif family == "gemma3":
                model = Gemma3ForCausalLM(Gemma3TextConfig(**{"head_dim": 8, **small}, sliding_window=64, **ids))
            else:
                model = LlamaForCausalLM(LlamaConfig(**small, **ids))
    finally:
        torch.set_default_dtype(torch.float32)
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
