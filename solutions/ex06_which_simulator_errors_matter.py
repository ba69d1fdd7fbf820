"""Notebook 06: reading a reward curve for hacking, and a simulator that teaches a policy to stop asking."""


def reward_hacked(train_rewards, real_scores):
    """The training reward's last third above its first third, while the real users' score fell."""
    third = max(1, len(train_rewards) // 3)
    rose = sum(train_rewards[-third:]) / third > sum(train_rewards[:third]) / third
    return rose and real_scores[-1] < real_scores[0]


def failing_simulator():
    """Leaving at every question: guessing at once pays, asking never does (the real users answer questions)."""
    return "p_quit_on_question=1"
