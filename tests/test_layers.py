"""The package's import graph: no cycle, and every module imports only from layers below its own.

The graph is read from the source (every ``import`` of the package's own modules, at the top of a module or inside
a function), so a lazy import cannot hide a cycle. A new module has to be placed in a layer here.
"""

import ast
from pathlib import Path

import calirl_lite

LAYERS = [
    {"io", "paths", "quiet", "chat", "endpoints", "checkpoints", "grpo", "mathcheck"},  # foundations: no import of the package
    {"results", "pool", "reply_cache"},  # what a training run and an evaluation leave behind, the table; the worker pool; an LLM user's kept replies
    {"dialogue", "settings", "plots"},  # the currency, settings dataclasses, figures
    {"task_family", "shift", "__init__"},  # what a task family is and its scripted people; notebook 01's exact MDPs
    {"toy_tasks"},  # the toy world's two families
    {"english_tasks", "collabllm_tasks"},  # the English world's families; CollabLLM's MATH-Chat and MediumDocEdit-Chat
    {"tasks"},  # every family by name
    {"prompts"},  # the chat as the policy and as a user simulator see it
    {"world", "inputs"},  # the toy world (tasks, corpus, tokenizer, LM); what files the kit accepts
    {"profiles", "context", "decode", "tiny_models"},  # where models come from; the run context; fast sampling; tiny random models
    {"users", "judge", "sources", "colab", "memory", "notebook_runner", "site", "vllm_turns"},  # users, judges; real data; notebooks anywhere, as a site; GPU memory; vLLM turns
    {"rollout", "stages"},  # the batched rollout engine; each stage's settings resolved once, and the contract between stages
    {"stats", "exact_gap", "timeplan"},  # behaviour statistics of dialogues; the exact per-turn gap of the simulation lemma; the GPU time plan
    {"realism"},  # the realism reward: a discriminator's log-odds, and GRPO of the simulator on it
    {"calibration"},  # phase 1: traces, SFT of the simulator, the gap
    {"evaluate"},  # a policy's scores with a user
    {"trainer", "widgets", "gap_study"},  # TRL's trainer wired for dialogue; notebook widgets; simulator gap against score drop
    {"train"},  # phase 2: a training run's lifecycle, one code path for every method
    {"confirm"},  # the registered confirmatory study
    {"bench", "reproduce", "lab", "calibration_study", "diagnosis"},  # benchmarks; the whole pipeline; the mismatch lab
    {"exercises"},  # the notebooks' checked exercises (checked against any of the above)
    {"grading"},  # the exercises as otter-grader assignments: student notebooks, autograders, marks
    {"env"},  # the entry: the one reader of the environment
    {"cli"},
    {"__main__"},
]


def import_graph() -> dict[str, set[str]]:
    folder = Path(calirl_lite.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("calirl_lite."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("calirl_lite.")}
        graph[path.stem] = deps - {path.stem}
    return graph


def test_every_module_has_a_layer():
    placed = set().union(*LAYERS)
    assert set(import_graph()) == placed, "place new modules in LAYERS (and remove gone ones)"
    assert sum(map(len, LAYERS)) == len(placed), "a module stands in two layers"


def test_the_import_graph_has_no_cycle():
    graph, done, path = import_graph(), set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import cycle: " + " → ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for d in sorted(graph[m]):
            visit(d)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_no_module_imports_a_layer_above_or_beside_its_own():
    layer = {m: i for i, tier in enumerate(LAYERS) for m in tier}
    upward = sorted(f"{m} (layer {layer[m]}) imports {d} (layer {layer[d]})"
                    for m, deps in import_graph().items() for d in deps if layer[d] >= layer[m])
    assert not upward, "\n".join(upward)


def test_no_function_is_longer_than_50_lines():
    folder = Path(calirl_lite.__file__).parent
    long = sorted(f"{path.stem}.{node.name}: {node.end_lineno - node.lineno + 1} lines" for path in folder.glob("*.py")
                  for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.end_lineno - node.lineno + 1 > 50)
    assert not long, "split these:\n" + "\n".join(long)
