"""The sampling loop and its two forwards: the lean Llama equals transformers, log-probs equal a fresh forward pass."""

import pytest
import torch

from calirl_lite import decode
from calirl_lite.profiles import load_model
from calirl_lite.rollout import Policy, rollout
from calirl_lite.tasks import get_task
from calirl_lite.tiny_models import build_tiny_model
from calirl_lite.users import LMUser, ScriptedUsers


def random_llama(kv_heads):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=120, hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=6,
                      num_key_value_heads=kv_heads, tie_word_embeddings=True, rope_theta=500.0)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("kv_heads", [6, 2])
def test_lean_llama_gives_transformers_logits_through_padding_new_turns_and_dropped_rows(kv_heads):
    model = random_llama(kv_heads)
    assert decode.LeanLlama.supports(model)
    rows = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]  # each row's real tokens, fed in three chunks
    chunks = [([[5, 6, 7], [12], [14, 15, 16]]), ([[8, 9], [13], [17]]), ([[10, 11], [], []])]
    got = {}
    with torch.inference_mode():
        f = decode.LeanLlama(model, 3)
        for n, chunk in enumerate(chunks):
            if n == 2:  # drop the middle row, as the engine does when a dialogue ends
                f.select(torch.tensor([0, 2]))
                chunk = [chunk[0], [99]]
                rows[2] = rows[2] + [99]
            width = max(map(len, chunk))
            ids = torch.tensor([[0] * (width - len(c)) + c for c in chunk])
            valid = torch.tensor([[False] * (width - len(c)) + [True] * len(c) for c in chunk])
            got[n] = f.forward(ids, valid)
        for r, row in ((0, rows[0]), (1, rows[2])):
            alone = model(torch.tensor([row])).logits[0, -1]
            assert torch.allclose(got[2][r], alone, atol=1e-5), (got[2][r] - alone).abs().max()
        assert torch.allclose(got[1][1], model(torch.tensor([rows[1]])).logits[0, -1], atol=1e-5)


def test_the_lean_forward_is_only_taken_for_plain_llamas(tmp_path):
    qwen, _ = load_model(str(build_tiny_model("qwen2", tmp_path / "q")), device="cpu")
    assert isinstance(decode.make_forward(qwen, 2), decode.HFForward)
    assert isinstance(decode.make_forward(random_llama(6), 2), decode.LeanLlama)
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(random_llama(6), LoraConfig(r=2, target_modules=["q_proj"]))
    assert isinstance(decode.make_forward(wrapped, 2), decode.HFForward)


def fresh_logprobs(model, tok, prompt, completion, temperature):
    """Log-probs of ``completion`` after ``prompt`` from one forward pass, as the sampler defines them."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1 : -1].float()
    special = sorted(set(tok.all_special_ids) - {decode.turn_end_id(tok)})
    logits[:, special] = float("-inf")
    logp = torch.log_softmax(logits / temperature, -1)
    return logp.gather(1, torch.tensor(completion)[:, None])[:, 0]


@pytest.mark.parametrize("family", ["world", "qwen2"])
def test_token_logprobs_equal_a_fresh_forward_pass(world, family, tmp_path):
    model, tok = world.load_model() if family == "world" else load_model(str(build_tiny_model(family, tmp_path / family)), device="cpu")
    goals = [t["goal"] for t in world.tasks("docedit-chat", "test")[:5]]
    user = LMUser(model, tok, max_new_tokens=6) if family == "world" else ScriptedUsers()
    batch = rollout(Policy(model, tok, temperature=0.7, max_new_tokens=12), user, get_task("docedit-chat"), goals, max_messages=6, seed=2)
    checked = 0
    for p, c, mask, lp in zip(batch.prompt_ids, batch.completion_ids, batch.env_mask, batch.logprobs):
        ref = fresh_logprobs(model, tok, p, c, 0.7)
        for k, on in enumerate(mask):
            if on:
                assert lp[k] == pytest.approx(ref[k].item(), abs=1e-4)
                checked += 1
    assert checked > 20


def test_sampling_stops_each_row_at_its_turn_end_and_forces_an_end_at_the_limit(world):
    model, tok = world.load_model()
    prompts = [[tok.convert_tokens_to_ids("<|im_start|>")] + tok("user\nhi<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]] * 4
    torch.manual_seed(0)
    outs = decode.generate(model, tok, prompts, max_new_tokens=3)
    end = decode.turn_end_id(tok)
    for o in outs:
        assert o.ids[-1] == end and end not in o.ids[:-1] and len(o.ids) <= 4
        assert o.forced_end == (len(o.ids) == 4) and (not o.forced_end or o.logprobs[-1] == 0.0)
        assert len(o.logprobs) == len(o.ids)
    with pytest.raises(ValueError, match="extend"):
        stream = decode.TokenStream(model, tok, prompts)
        stream.sample(3)
        stream.sample(3)
