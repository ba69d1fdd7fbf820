"""Notebook 03: what the simulator's SFT learns from, and the NLL of held-out user turns."""


def simulator_loss_mask(segments):
    """1 on every token of a user turn (what the simulator learns to write), 0 on the system prompt and the assistant."""
    return [1 if role == "user" else 0 for role, count in segments for _ in range(count)]


def heldout_nll(token_logprobs, mask):
    """The mean negative log-likelihood over the masked (user) tokens."""
    picked = [lp for lp, m in zip(token_logprobs, mask) if m]
    return -sum(picked) / len(picked)
