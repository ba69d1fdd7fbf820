"""The toy dialogue world of the ``tiny`` profile, built deterministically from a seed.

``build_world(WorldConfig(seed=1, cache_dir="data/cache"))`` (or ``calirl world build --seed 1``) makes and caches
(world seed 0 comes built inside the package: :func:`shipped_world`):

1. **task splits** — disjoint train and test goals of both tasks (``tasks/<task>-<split>.jsonl``);
2. **a synthetic corpus** — dialogues between scripted corpus users and scripted assistants of
   mixed quality (:mod:`calirl_lite.toy_tasks`). Its users are *not* the real users: by default
   they volunteer details, name everything wrong in an answer, and the forthcoming ones leave when
   they are asked questions (``corpus_user_mix``, ``toy_tasks.CORPUS_USERS``). Each dialogue
   appears twice, once as the assistant sees it and once as the user sees it (hidden goal in
   the system prompt, CollabLLM style);
3. **a tokenizer** trained on that corpus (word level, ChatML special tokens, a chat template
   with ``{% generation %}`` markers) saved as a standard transformers tokenizer;
4. **one tiny causal LM** (a Llama config) pre-trained from scratch on the corpus with
   ``transformers.Trainer``, saved as safetensors.

The LM prompted as the assistant is the *base policy*; prompted as the user (hidden goal in the
system prompt) it is the *naive simulator*. Both inherit the corpus's habits, which is why the
naive simulator has a real, measurable gap to the real users — the gap the paper is about.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import prompts, task_family, toy_tasks
from .dialogue import TERMINATE, Dialogue, Message, write_jsonl
from .io import atomic_dir, atomic_write_json, atomic_write_text, folder_lock
from .prompts import assistant_messages, user_messages
from .quiet import no_library_bars, tidy_trainer
from .settings import Settings, set_seed, short_hash
from .task_family import ScriptedAssistant, ScriptedUser, Task
from .tasks import get_task
from .toy_tasks import CORPUS_ASSISTANTS, CORPUS_USERS, TASKS, vocabulary

WORLD_FORMAT = 6
"""Bump when a code change alters what ``build_world`` makes, so that caches of older worlds are not reused."""

SPECIAL_TOKENS = ("<|pad|>", "<|unk|>", "<|im_start|>", "<|im_end|>")

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else -%}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
"""ChatML with ``{% generation %}`` around assistant turns (TRL's assistant-only loss reads these)."""


@dataclass
class WorldConfig(Settings):
    """Settings of the toy world (``calirl world build``)."""

    seed: int = 0
    """seed of everything in the world: tasks, corpus, tokenizer, model initialisation and training (world 0 is shipped
    with the kit; the command line and notebooks take ``$CALIRL_WORLD_SEED``)"""
    n_train_tasks: int = 2000
    """hidden goals per task in the train split"""
    n_test_tasks: int = 200
    """hidden goals per task in the test split (disjoint from train)"""
    corpus_dialogues: int = 6000
    """synthetic pre-training dialogues per task"""
    corpus_user_mix: dict[str, float] = field(default_factory=lambda: {"forthcoming": 0.5, "cooperative": 0.35, "withholding": 0.15})
    """weights of the corpus's user personas (toy_tasks.CORPUS_USERS); the real users are 'withholding'"""
    corpus_assistant_mix: dict[str, float] = field(default_factory=lambda: {"careful": 0.35, "sloppy": 0.3, "hasty": 0.35})
    """weights of the corpus's scripted assistants (toy_tasks.CORPUS_ASSISTANTS)"""
    max_messages: int = 14
    """message budget of a dialogue (user and assistant messages together, as in CollabLLM)"""
    hidden_size: int = 128
    """width of the tiny Llama"""
    num_layers: int = 2
    """transformer blocks of the tiny Llama"""
    num_heads: int = 4
    """attention heads"""
    max_length: int = 256
    """tokens per pre-training row: whole corpus samples are packed into rows of this length (a longer sample is cut;
    99% are shorter than 235 tokens)"""
    train_steps: int = 1200
    """pre-training steps. The LM learns to copy a detail from the chat into its answer in a sudden drop of the loss
    after a few hundred steps; arithmetic needs the full 1,200 (600 steps: sums right 0.27 instead of 0.76)"""
    batch_size: int = 18
    """packed rows per pre-training step (about 32 corpus samples)"""
    learning_rate: float = 3e-3
    """peak learning rate (cosine schedule, 5% warm-up)"""
    cache_dir: str = ""
    """where built worlds are cached (the command line and notebooks: data/cache under the project root, or $CALIRL_CACHE)"""

    SMOKE = {"n_train_tasks": 60, "n_test_tasks": 20, "corpus_dialogues": 300, "train_steps": 40, "hidden_size": 64, "num_layers": 2}
    BOUNDS = {name: (1, None) for name in ("n_train_tasks", "n_test_tasks", "corpus_dialogues", "train_steps", "batch_size", "hidden_size", "num_layers",
                                            "num_heads", "max_length")} | {"max_messages": (2, None), "learning_rate": (0, None)}

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, mix, known in (("corpus_user_mix", self.corpus_user_mix, CORPUS_USERS), ("corpus_assistant_mix", self.corpus_assistant_mix, CORPUS_ASSISTANTS)):
            unknown = set(mix) - set(known)
            if unknown:
                raise ValueError(f"{name} has unknown persona(s) {sorted(unknown)}; known: {sorted(known)}")
            if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
                raise ValueError(f"{name} weights must be ≥ 0 and not all zero, got {mix}")

    def key(self) -> str:
        """A short hash of every setting that changes what is built (not where it is cached), of the world's format and
        of its definition (:func:`world_definition`: the personas' parameters and the code of the toy tasks, the
        scripted people and the build) — so an edited persona or corpus rule can never reuse an old world, nor the
        runs made on it."""
        return self.digest(exclude=("cache_dir",), extra={"world_format": WORLD_FORMAT, "definition": world_definition()})

    def folder(self) -> Path:
        """Where this world is cached: ``<cache_dir>/tiny-seed<seed>-<key>``."""
        if not self.cache_dir:
            raise ValueError("WorldConfig.cache_dir is not set: take the world from a context (calirl_lite.env.context().toy_world()) "
                             "or give a cache folder")
        return Path(self.cache_dir) / f"tiny-seed{self.seed}-{self.key()}"


# ----------------------------------------------------------------------------- tasks and corpus


def world_definition() -> dict[str, Any]:
    """What defines the toy world besides its settings: every persona's parameters (the corpus users and assistants,
    and the real users that score every run) and a hash of the code that makes and reads the world — the toy tasks,
    the scripted people, their words, the prompts and the build. The personas are read at every call (an edit made in
    a running notebook counts); the code and words once per process."""
    people = {**{f"user:{k}": v for k, v in toy_tasks.CORPUS_USERS.items()}, **{f"assistant:{k}": v for k, v in toy_tasks.CORPUS_ASSISTANTS.items()},
              "real": task_family.REAL_USER}
    return {"personas": {k: dataclasses.asdict(v) for k, v in people.items()}, "code": _code_hash()}


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    pieces = [task_family.UserPersona, task_family.AssistantPersona, toy_tasks.graded_persona, task_family.Task, toy_tasks.ArithChat,
              toy_tasks.DocEditChat, task_family.ScriptedUser, task_family.ScriptedAssistant, toy_tasks.vocabulary, prompts, make_splits, scripted_dialogue,
              make_corpus, corpus_texts, _space_out, train_word_tokenizer, tiny_llama, pack, pretrain, _make_parts, _build]
    words = [task_family.ACCEPT, task_family.REJECT, task_family.CONFUSED, task_family.NOT_SURE, task_family.GIVE_UP, toy_tasks.NAMES,
             toy_tasks.ITEMS, toy_tasks.VERBS, toy_tasks.PLACES, toy_tasks.DAYS, toy_tasks.TONES, SPECIAL_TOKENS, CHATML_TEMPLATE]
    return short_hash({"code": [inspect.getsource(p) for p in pieces], "words": repr(words)})



def make_splits(cfg: WorldConfig) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Disjoint train and test goals per task: {task: {"train": [...], "test": [...]}}."""
    rng = np.random.default_rng([cfg.seed, 1])
    splits: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, task in TASKS.items():
        seen: set[str] = set()
        out: dict[str, list[dict[str, Any]]] = {"test": [], "train": []}
        for split, n in (("test", cfg.n_test_tasks), ("train", cfg.n_train_tasks)):
            tries = 0
            while len(out[split]) < n:
                goal = task.sample_goal(rng)
                key = json.dumps(goal, sort_keys=True)
                tries += 1
                if key in seen:
                    if tries > 50 * (n + 10):
                        raise ValueError(f"{name}: cannot draw {n} distinct {split} goals; ask for fewer tasks")
                    continue
                seen.add(key)
                out[split].append({"task_id": f"{name}-{split}-{len(out[split])}", "goal": goal})
        splits[name] = out
    return splits


def scripted_dialogue(task: Task, goal: dict[str, Any], user: ScriptedUser, assistant: ScriptedAssistant, max_messages: int, task_id: str = "") -> Dialogue:
    """A dialogue between two scripted people (used for the corpus; fast, no model)."""
    messages = [Message("user", user.first_message())]
    terminated = False
    while len(messages) < max_messages:
        messages.append(Message("assistant", assistant.reply(messages)))
        if len(messages) >= max_messages:
            break
        text = user.reply(messages[-1].text)
        messages.append(Message("user", text))
        if TERMINATE in text:
            terminated = True
            break
    d = Dialogue(task.name, task_id, goal, messages, user=user.persona.name, policy=assistant.persona.name, terminated=terminated)
    d.scores = task.score(d)
    return d


def make_corpus(cfg: WorldConfig, splits: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Dialogue]:
    """Corpus dialogues on train goals, with the corpus's user and assistant mixes."""
    rng = np.random.default_rng([cfg.seed, 2])
    users, u_w = zip(*cfg.corpus_user_mix.items())
    assistants, a_w = zip(*cfg.corpus_assistant_mix.items())
    u_p, a_p = np.array(u_w) / sum(u_w), np.array(a_w) / sum(a_w)
    corpus = []
    for name, task in TASKS.items():
        train = splits[name]["train"]
        for i in range(cfg.corpus_dialogues):
            t = train[i % len(train)]
            user = ScriptedUser(task, t["goal"], CORPUS_USERS[users[rng.choice(len(users), p=u_p)]], rng)
            assistant = ScriptedAssistant(task, CORPUS_ASSISTANTS[assistants[rng.choice(len(assistants), p=a_p)]], rng)
            corpus.append(scripted_dialogue(task, t["goal"], user, assistant, cfg.max_messages, t["task_id"]))
    return corpus


def corpus_texts(corpus: list[Dialogue], tokenizer: Any) -> list[str]:
    """Each dialogue rendered twice with the chat template: as the assistant sees it and as the user sees it."""
    texts = []
    for d in corpus:
        task = get_task(d.task)
        texts.append(tokenizer.apply_chat_template(assistant_messages(d.messages), tokenize=False))
        texts.append(tokenizer.apply_chat_template(user_messages(task, d.goal, d.messages), tokenize=False))
    return texts


# ----------------------------------------------------------------------------- tokenizer and model


def _space_out(text: str, special_tokens: tuple[str, ...]) -> str:
    for sp in special_tokens:
        text = text.replace(sp, f" {sp} ")
    return text.replace(TERMINATE, " ")  # an added token of its own, not two words


def train_word_tokenizer(texts: list[str], special_tokens: tuple[str, ...] = SPECIAL_TOKENS, chat_template: str = CHATML_TEMPLATE, extra_words: tuple[str, ...] = ()) -> Any:
    """A word-level tokenizer (split on white space) trained on ``texts``, as a ``PreTrainedTokenizerFast``.

    ``special_tokens`` lists pad, unk, bos, the turn-end token, then any other special tokens of
    ``chat_template`` (for ChatML the bos role is played by ``<|im_start|>``).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    pad, unk, bos, end = special_tokens[:4]
    tok = Tokenizer(models.WordLevel(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=list(special_tokens) + [TERMINATE], min_frequency=1)
    spaced = (_space_out(t, special_tokens) for t in texts)  # "<|im_start|>user" → "<|im_start|> user"
    tok.train_from_iterator([*spaced, " ".join(extra_words)], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=pad, unk_token=unk, bos_token=bos, eos_token=end,
        additional_special_tokens=list(special_tokens[4:]), padding_side="left", clean_up_tokenization_spaces=False,
    )
    fast.add_tokens([TERMINATE])
    fast.chat_template = chat_template
    return fast


def tiny_llama(cfg: WorldConfig, tokenizer: Any) -> Any:
    """A randomly initialised tiny Llama for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=max(tokenizer.get_vocab().values()) + 1, hidden_size=cfg.hidden_size, intermediate_size=2 * cfg.hidden_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(config)


def pack(samples: list[list[int]], length: int, pad_id: int, rng: np.random.Generator) -> dict[str, list[list[int]]]:
    """Pack token sequences into rows of ``length`` tokens for pre-training without padding waste.

    Samples (cut at ``length``) are taken in a random order and each goes into the first open row with room
    for it (first fit), never split. In a row every sample restarts its position ids at 0, which is how
    transformers recognises packed sequences and keeps each sample's attention inside itself; the first
    token of a sample is not predicted from the one before (label -100), nor is padding.
    """
    rows: list[list[list[int]]] = []
    free: list[int] = []
    for i in rng.permutation(len(samples)):
        ids = samples[i][:length]
        r = next((k for k in range(max(0, len(rows) - 64), len(rows)) if free[k] >= len(ids)), None)  # the last 64 rows are open
        if r is None:
            rows.append([])
            free.append(length)
            r = len(rows) - 1
        rows[r].append(ids)
        free[r] -= len(ids)
    out: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    for row in rows:
        ids = [t for sample in row for t in sample]
        labels = [t if k else -100 for sample in row for k, t in enumerate(sample)]
        positions = [k for sample in row for k in range(len(sample))]
        n = length - len(ids)  # padding: a block of its own, never a target
        out["input_ids"].append(ids + [pad_id] * n)
        out["labels"].append(labels + [-100] * n)
        out["position_ids"].append(positions + list(range(n)))
    return out


FINGERPRINT_STEP = 100
"""The pre-training step at which a build records its LM's weights' SHA-256 (``world.json``'s ``fingerprint``): a
rebuild can be checked that far in a tenth of its time (``verify_world(prefix=True)``)."""


def weights_digest(model: Any) -> str:
    """The SHA-256 of a model's weights, tensor by tensor in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def pretrain(model: Any, tokenizer: Any, texts: list[str], cfg: WorldConfig, out_dir: Path, stop_at: int = 0) -> tuple[list[dict[str, float]], str]:
    """Causal-LM pre-training with ``transformers.Trainer`` on packed rows (CPU: fp32, no gradient checkpointing);
    returns the loss log and the weights' SHA-256 at step :data:`FINGERPRINT_STEP` (or the last, if fewer).

    ``train_steps`` steps of ``batch_size`` rows of ``max_length`` tokens, each row several whole samples
    (:func:`pack`), in random order over as many epochs as the steps need. ``stop_at`` ends it after that step, with
    the same learning-rate schedule as the whole run (the steps before are the whole run's, bit for bit).
    """
    from datasets import Dataset
    from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

    samples = tokenizer(texts, add_special_tokens=False)["input_ids"]
    ds = Dataset.from_dict(pack(samples, cfg.max_length, tokenizer.pad_token_id, np.random.default_rng([cfg.seed, 3])))
    args = TrainingArguments(
        output_dir=str(out_dir), max_steps=cfg.train_steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, cfg.train_steps // 20), weight_decay=0.01,
        logging_steps=max(1, cfg.train_steps // 20), save_strategy="no", report_to=[], seed=cfg.seed, data_seed=cfg.seed,
        bf16=False, fp16=False, use_cpu=True, dataloader_num_workers=0, disable_tqdm=False,
    )
    fingerprint = [""]

    class Fingerprint(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == min(FINGERPRINT_STEP, cfg.train_steps):
                fingerprint[0] = weights_digest(model)
            if stop_at and state.global_step >= stop_at:
                control.should_training_stop = True

    model.config.use_cache = False  # with a cache, transformers would not keep packed samples apart
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=default_data_collator, callbacks=[Fingerprint()])
    tidy_trainer(trainer)
    trainer.train()
    model.config.use_cache = True
    return [h for h in trainer.state.log_history if "loss" in h], fingerprint[0]


# ----------------------------------------------------------------------------- build and load


@dataclass
class World:
    """A built toy world: its folder, settings, task splits, tokenizer and model paths."""

    folder: Path
    config: WorldConfig
    manifest: dict[str, Any]

    @property
    def model_dir(self) -> Path:
        return self.folder / "model"

    def tasks(self, task: str, split: str) -> list[dict[str, Any]]:
        """The goals of one task and split ("train" or "test")."""
        get_task(task)
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        path = self.folder / "tasks" / f"{task}-{split}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def load_model(self) -> tuple[Any, Any]:
        """(model, tokenizer) from the world's safetensors folder, in eval mode: a fresh copy at every call (the
        caller may train it), the files read once per process."""
        import copy

        from transformers import AutoModelForCausalLM, AutoTokenizer

        weights = self.model_dir / "model.safetensors"
        key = (str(weights.resolve()), weights.stat().st_mtime_ns)
        if key not in _LOADED:
            with no_library_bars():
                tok = AutoTokenizer.from_pretrained(self.model_dir)
                model = AutoModelForCausalLM.from_pretrained(self.model_dir, use_safetensors=True)
            _LOADED[key] = (model.eval(), tok)
        model, tok = _LOADED[key]
        return copy.deepcopy(model), copy.deepcopy(tok)


_LOADED: dict[tuple[str, int], tuple[Any, Any]] = {}
"""The toy LMs this process has read, by weights file and its modification time."""


def build_world(cfg: WorldConfig, force: bool = False, verbose: bool = True) -> World:
    """The toy world of ``cfg``: the one shipped with the kit when it is that world (:func:`shipped_world`), else built
    (or loaded from the cache). Deterministic for a given seed.

    The world is built in a temporary folder and renamed into place when complete, so an interrupted build never
    leaves a half world in the cache; a lock file beside it makes builds of the same world wait for each other
    (the second one then loads what the first built), and a cached world is used only when every file its manifest
    lists is there. Reading a finished world writes nothing, so a read-only cache (a teacher's shared one, an
    installed package) serves as well. ``force`` builds it into the cache even where it is shipped or cached.
    """
    if not force:
        world = shipped_world(cfg) or _load_complete(cfg.folder(), cfg)
        if world is not None:
            return world
    folder = cfg.folder()
    with folder_lock(folder):
        if not force and (world := _load_complete(folder, cfg)) is not None:  # built by another process meanwhile
            return world
        for stale in folder.parent.glob(folder.name + ".building-*"):  # only the lock holder builds: these are leftovers
            shutil.rmtree(stale, ignore_errors=True)
        return _build(cfg, folder, verbose)


def cached_world(cfg: WorldConfig) -> World | None:
    """The world of ``cfg`` if it is shipped or the cache holds it complete, else None (nothing is built)."""
    return shipped_world(cfg) or _load_complete(cfg.folder(), cfg)


# ----------------------------------------------------------------------------- the world shipped with the kit

SHIPPED = Path(__file__).parent / "prebuilt"
"""Where the pre-built worlds shipped inside the package live (world seed 0 at full size: ``tiny-seed0/``)."""
SHIPPED_LEAVES_OUT = ("corpus.jsonl",)
"""Files of a built world the shipped copy leaves out: the corpus (8 MB) is only read to pre-train the LM."""


def shipped_world(cfg: WorldConfig) -> World | None:
    """The world shipped inside the package for ``cfg``'s seed, when its key is the key the code computes for ``cfg``
    (same settings, same format, same world-making code); else None. It is read where it lies, never written."""
    folder = SHIPPED / f"tiny-seed{cfg.seed}"
    try:
        manifest = json.loads((folder / "world.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != cfg.key() or not all((folder / f).is_file() for f in manifest.get("files", ["missing-list"])):
        return None
    digests = manifest.get("sha256", {})
    if not digests or file_digests(folder, list(digests)) != digests:  # an edited or damaged copy is not the shipped world
        return None
    return World(folder, cfg, manifest)


def file_digests(folder: Path, files: list[str]) -> dict[str, str]:
    """The SHA-256 of each of ``files`` (paths relative to ``folder``)."""
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in files}


def ship_world(cfg: WorldConfig, dest: Path = SHIPPED) -> Path:
    """Build ``cfg``'s world afresh (in a temporary cache) and write it, less :data:`SHIPPED_LEAVES_OUT`, to
    ``dest/tiny-seed<seed>/`` with its key and each file's SHA-256 in ``world.json`` (``make world``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        built = build_world(dataclasses.replace(cfg, cache_dir=tmp), force=True)
        files = [f for f in built.manifest["files"] if f not in SHIPPED_LEAVES_OUT and f not in ("world.json", "config.json")]
        settings = {**built.config.to_dict(), "cache_dir": ""}  # where it was built is no part of it
        with atomic_dir(dest / f"tiny-seed{cfg.seed}", ".shipping") as out:
            for f in files:
                (out / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(built.folder / f, out / f)
            atomic_write_json(out / "config.json", {"settings": "WorldConfig", **settings})
            manifest = {**built.manifest, "config": settings, "files": [*files, "config.json", "world.json"], "sha256": file_digests(out, files),
                        "left_out": {f: "not shipped: `calirl world build --force` makes it" for f in SHIPPED_LEAVES_OUT}}
            atomic_write_json(out / "world.json", manifest)
    return dest / f"tiny-seed{cfg.seed}"


def verify_world(seed: int = 0, prefix: bool = False, measure: Callable[[World], dict[str, float]] | None = None) -> dict[str, Any]:
    """Rebuild the world shipped for ``seed`` afresh from the code, with the settings it was shipped with (in a temporary
    cache), and compare it with what is shipped, file by file. Returns ``{"seed", "key_matches", "identical",
    "differ": [files], "weights": {…}, "abilities": {…}, "build_seconds"}``: where the LM's weights differ (another CPU
    may round otherwise) their largest difference, and ``measure`` (what a world's LM can do: ``calirl world build
    --verify`` gives ``calirl bench world``'s) of the shipped and the rebuilt world. ``prefix``: only as far as the
    fingerprint step — the task splits and the tokenizer whole, the LM's weights at that step (:data:`FINGERPRINT_STEP`)."""
    import tempfile

    folder = SHIPPED / f"tiny-seed{seed}"
    if not (folder / "world.json").is_file():
        raise FileNotFoundError(f"no world of seed {seed} is shipped (looked in {folder})")
    manifest = json.loads((folder / "world.json").read_text())
    shipped = WorldConfig.load(folder / "config.json")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(shipped, cache_dir=tmp)
        start = time.perf_counter()
        if prefix:
            differ = _rebuilt_prefix_differs(cfg, Path(tmp), folder, manifest)
            return {"seed": seed, "key_matches": manifest["key"] == cfg.key(), "identical": not differ, "differ": differ, "weights": {},
                    "abilities": {}, "build_seconds": time.perf_counter() - start, "prefix_step": manifest["fingerprint"]["step"]}
        built = build_world(cfg, force=True, verbose=False)
        rebuilt = file_digests(built.folder, list(manifest["sha256"]))
        differ = sorted(f for f, digest in manifest["sha256"].items() if rebuilt[f] != digest)
        weights = _weight_difference(folder, built.folder) if "model/model.safetensors" in differ else {}
        abilities = {"shipped": measure(World(folder, shipped, manifest)), "rebuilt": measure(built)} if weights and measure else {}
        return {"seed": seed, "key_matches": manifest["key"] == cfg.key(), "identical": not differ, "differ": differ, "weights": weights,
                "abilities": abilities, "build_seconds": built.manifest["build_seconds"]}


def _rebuilt_prefix_differs(cfg: WorldConfig, tmp: Path, shipped: Path, manifest: dict[str, Any]) -> list[str]:
    """The world of ``cfg`` rebuilt as far as its fingerprint step in ``tmp``: which of the shipped task splits and
    tokenizer files differ, and ``model weights at step N`` if the LM's weights at that step do."""
    set_seed(cfg.seed)
    _, texts, tokenizer = _make_parts(cfg, tmp)
    with no_library_bars():
        tokenizer.save_pretrained(tmp / "model")
    step = manifest["fingerprint"]["step"]
    _, fingerprint = pretrain(tiny_llama(cfg, tokenizer), tokenizer, texts, cfg, tmp / "trainer", stop_at=step)
    parts = [f for f in manifest["sha256"] if f.startswith("tasks/") or f.removeprefix("model/") in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")]
    differ = sorted(f for f, digest in file_digests(tmp, parts).items() if digest != manifest["sha256"][f])
    return differ + ([f"model weights at step {step}"] if fingerprint != manifest["fingerprint"]["sha256"] else [])


def _weight_difference(a: Path, b: Path) -> dict[str, float]:
    """The largest absolute difference between two worlds' LM weights, and the tensor where it is."""
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    gaps = {name: float((wa[name].float() - wb[name].float()).abs().max()) for name in wa}
    worst = max(gaps, key=gaps.get)
    return {"max_abs_difference": gaps[worst], "tensor": worst}


def _load_complete(folder: Path, cfg: WorldConfig) -> World | None:
    """The world in ``folder`` if its manifest and every file it lists are there, else None."""
    try:
        manifest = json.loads((folder / "world.json").read_text())
    except (OSError, ValueError):
        return None
    if not all((folder / f).is_file() for f in manifest.get("files", ["missing-list"])):
        return None
    return World(folder, cfg, manifest)


def _make_parts(cfg: WorldConfig, folder: Path) -> tuple[list[Dialogue], list[str], Any]:
    """The world before its LM: the task splits (``tasks/``) and the corpus (``corpus.jsonl``) written into ``folder``,
    the corpus rendered as training texts, and the tokenizer trained on them."""
    (folder / "tasks").mkdir()
    splits = make_splits(cfg)
    for name, parts in splits.items():
        for split, rows in parts.items():
            atomic_write_text(folder / "tasks" / f"{name}-{split}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    corpus = make_corpus(cfg, splits)
    write_jsonl(folder / "corpus.jsonl", corpus)
    plain = train_word_tokenizer([], extra_words=())  # template-only tokenizer to render the corpus
    texts = corpus_texts(corpus, plain)
    return corpus, texts, train_word_tokenizer(texts, extra_words=vocabulary())


def _build(cfg: WorldConfig, folder: Path, verbose: bool) -> World:
    start = time.perf_counter()
    set_seed(cfg.seed)
    with atomic_dir(folder, f".building-{os.getpid()}") as tmp:  # a killed build leaves no half world in the cache
        corpus, texts, tokenizer = _make_parts(cfg, tmp)
        model = tiny_llama(cfg, tokenizer)
        if verbose:
            print(f"world: {len(corpus)} corpus dialogues, vocabulary {len(tokenizer)}, model {model.num_parameters():,} parameters")
        log, fingerprint = pretrain(model, tokenizer, texts, cfg, tmp / "trainer")
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        with no_library_bars():
            model.save_pretrained(tmp / "model", safe_serialization=True)
            tokenizer.save_pretrained(tmp / "model")
        seconds = time.perf_counter() - start
        cfg.save(tmp)
        manifest = {
            "config": cfg.to_dict(), "key": cfg.key(), "build_seconds": seconds, "parameters": model.num_parameters(),
            "vocab_size": len(tokenizer), "corpus_dialogues": len(corpus), "train_loss": log,
            "fingerprint": {"step": min(FINGERPRINT_STEP, cfg.train_steps), "sha256": fingerprint},
            "files": sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()),
        }
        atomic_write_json(tmp / "world.json", manifest)
    if verbose:
        print(f"world built in {seconds:.1f} s → {folder}")
    return World(folder, cfg, manifest)
