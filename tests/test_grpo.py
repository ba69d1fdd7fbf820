"""The reference GRPO loss equals TRL's on the same batch; user tokens (mask 0) carry no gradient."""

import pytest
import torch

from calirl_lite import grpo


@pytest.fixture(scope="module")
def trainer_and_batch(tmp_path_factory, world):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tok = world.load_model()
    args = GRPOConfig(output_dir=str(tmp_path_factory.mktemp("grpo")), loss_type="bnpo", beta=0.0, per_device_train_batch_size=4,
                      num_generations=4, max_completion_length=8, report_to=[], use_cpu=True, bf16=False)
    trainer = GRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=args,
                          train_dataset=Dataset.from_list([{"prompt": "hi"}] * 4), processing_class=tok)
    trainer.current_gradient_accumulation_steps = 1
    g = torch.Generator().manual_seed(0)
    B, P, C = 4, 5, 7
    batch = {
        "prompt_ids": torch.randint(10, len(tok) - 1, (B, P), generator=g),
        "prompt_mask": torch.ones(B, P, dtype=torch.long),
        "completion_ids": torch.randint(10, len(tok) - 1, (B, C), generator=g),
        "completion_mask": torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 7, [1] * 3 + [0] * 4]),
        "tool_mask": torch.tensor([[1, 1, 0, 0, 1, 1, 1], [1] * 7, [1, 1, 1, 0, 0, 0, 1], [1] * 7]),  # env_mask: 0 on user tokens
        "advantages": grpo.group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.0]), 4),
    }
    with torch.no_grad():
        logps = grpo.completion_logps(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"])
    batch["old_per_token_logps"] = logps + 0.3 * torch.randn(logps.shape, generator=g)  # a policy that has moved on
    batch["num_items_in_batch"] = (batch["completion_mask"] * batch["tool_mask"]).sum()
    return trainer, model, batch


def test_group_advantages_are_standardised_within_groups():
    adv = grpo.group_advantages([1.0, 0.0, 0.0, 1.0, 2.0, 2.0], 2)
    assert adv[:4].tolist() == pytest.approx([0.7070, -0.7070, -0.7070, 0.7070], abs=1e-3)
    assert adv[4:].tolist() == [0.0, 0.0]  # equal rewards: no signal
    with pytest.raises(ValueError, match="groups of 4"):
        grpo.group_advantages([1.0, 2.0, 3.0], 4)


def test_reference_loss_equals_trls_loss_on_the_same_batch(trainer_and_batch):
    trainer, model, batch = trainer_and_batch
    trl_loss = trainer._compute_loss(model, dict(batch))
    logps = grpo.completion_logps(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"])
    ours = grpo.grpo_loss(logps, batch["old_per_token_logps"], batch["advantages"], batch["completion_mask"] * batch["tool_mask"],
                          trainer.epsilon_low, trainer.epsilon_high)
    assert float(ours) == pytest.approx(float(trl_loss), rel=1e-5, abs=1e-6)


def test_user_tokens_carry_no_gradient_and_policy_tokens_do(trainer_and_batch):
    trainer, model, batch = trainer_and_batch
    base = float(trainer._compute_loss(model, dict(batch)))
    user = (batch["tool_mask"] == 0) & (batch["completion_mask"] == 1)
    moved = dict(batch, old_per_token_logps=batch["old_per_token_logps"] + 5.0 * user)  # change only the user tokens' log-probs
    assert float(trainer._compute_loss(model, moved)) == pytest.approx(base, abs=1e-7)
    policy = (batch["tool_mask"] == 1) & (batch["completion_mask"] == 1)
    moved = dict(batch, old_per_token_logps=batch["old_per_token_logps"] + 0.5 * policy)
    assert abs(float(trainer._compute_loss(model, moved)) - base) > 1e-4


def test_pinned_trl_hands_rollout_func_each_prompt_repeated_once_per_generation(tmp_path, world):
    """TRL 1.16 (pinned) gives ``rollout_func`` every prompt already repeated ``num_generations`` times and
    wants exactly one completion back per prompt it gave (its docstring says otherwise); the kit's trainer
    (``calirl_lite.trainer``) must follow what the library does. This test pins it, so an upgrade that changes it fails here."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from calirl_lite.chat import prompt_ids

    model, tok = world.load_model()
    seen = []

    def rollout_func(prompts, trainer):
        seen.append(list(prompts))
        ids = [prompt_ids(tok, [{"role": "user", "content": p}]) for p in prompts]
        return {"prompt_ids": ids, "completion_ids": [[5, 6, tok.eos_token_id]] * len(ids), "logprobs": [[-1.0] * 3] * len(ids)}

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=1,
                      report_to=[], use_cpu=True, bf16=False, save_strategy="no")
    trainer = GRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [float(i % 2) for i in range(len(completions))], args=args,
                          train_dataset=Dataset.from_list([{"prompt": f"p{i}"} for i in range(8)]), processing_class=tok, rollout_func=rollout_func)
    trainer.train()
    assert len(seen) == 1 and len(seen[0]) == 4
    assert seen[0][0::2] == seen[0][1::2]  # each prompt twice, side by side
    assert trainer.state.global_step == 1
