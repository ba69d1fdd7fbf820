"""Hostile input: every file the kit reads gives a Dialogue (or row) or one error naming file and line, in bounded
time; limits on sizes; one rule for every number on the command line; nothing is created for rejected input."""

import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calirl_lite.cli import main
from calirl_lite.dialogue import Dialogue
from calirl_lite.inputs import BYTES_PER_TOKEN, Limits, check_dialogue, read_collabllm_rows, read_dialogues
from calirl_lite.io import InputError

GOAL = {"name": "tom", "item": "apples", "verb": 0, "start": 3, "change": 2, "answer": 5}
TURNS = [("user", "tom has some apples . how many ?"), ("assistant", "how many at the start ?"), ("user", "3"), ("assistant", "the answer is 5 .")]
SMALL = Limits(64, 256, lambda text: len(text.split()), "test limits")


def row(messages=TURNS, goal=GOAL, **extra):
    return {"task": "arith-chat", "task_id": "1", "goal": goal, "messages": [{"role": r, "text": t} for r, t in messages], **extra}


def write(path, *rows):
    path.write_bytes(b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows))
    return path


@pytest.mark.parametrize("bad, message", [
    (row(goal={"problem": "x", "answer": 5}), r"the goal lacks field\(s\) \['name', 'item', 'verb', 'start', 'change'\]"),
    (row(goal={**GOAL, "start": "3"}), "goal field 'start' must be an integer, got '3'"),
    (row(goal={**GOAL, "verb": 9}), "goal field 'verb' must be 0 to 3"),
    (row(messages=[("user", " \t"), *TURNS[1:]]), "message 0 is an empty user turn"),
    (row(messages=TURNS[1:]), "message 0 has role 'assistant', expected 'user'"),
    (row(messages=[("user", "x " * 65)]), "message 0 is 65 tokens long; the longest message accepted is 64 tokens .test limits, max_message_tokens"),
    (row(messages=[("user", "x" * (64 * BYTES_PER_TOKEN + 1))]), "message 0 is 1,025 bytes long"),
    (row(messages=[("user", "x " * 60), ("assistant", "y " * 60)] * 3), "the dialogue is 360 tokens long; the longest accepted is 256 tokens"),
    (row(task_id=None), "field 'task_id' must be a string or an integer, got NoneType"),
    (row(terminated="yes"), "field 'terminated' must be true or false"),
    (row(scores={"accuracy": "high"}), r"scores\['accuracy'\] must be a finite number"),
    ({**row(), "task": "docedit-chat"}, "the dialogue is of task 'docedit-chat', not 'arith-chat'"),
    (b'{"task": "arith-chat", "text": "caf\xe9"}', r"not UTF-8 text \(byte 0xe9 at column 36\)"),
    (b'{"task": ', "not valid JSON"),
    (b"[" * 5000, "JSON the kit does not read"),
    (b"1" * 5000, "JSON the kit does not read"),
    (b"x" * (2 * 256 * BYTES_PER_TOKEN + 1), "the line is longer than 8,192 bytes"),
])
def test_every_fault_of_a_dialogue_file_names_its_file_and_line(tmp_path, bad, message):
    path = write(tmp_path / "logged.jsonl", row(), bad)
    with pytest.raises(InputError, match=rf"logged.jsonl:2: .*(?:{message})") as e:
        read_dialogues(path, "arith-chat", SMALL)
    assert e.value.line == 2 and e.value.path == str(path)


def test_a_good_file_reads_back_and_one_huge_line_is_refused_unparsed(tmp_path):
    assert read_dialogues(write(tmp_path / "ok.jsonl", row(), row()), "arith-chat", SMALL) == [Dialogue.from_dict(row())] * 2
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps(row(messages=[("user", "x " * 5_000_000)])) + "\n")  # 10 MB in one message
    start = time.perf_counter()
    with pytest.raises(InputError, match="huge.jsonl:1: the line is longer than"):
        read_dialogues(huge, "arith-chat", SMALL)
    assert time.perf_counter() - start < 5  # refused without being parsed


# ----------------------------------------------------------------------------- fuzz: any bytes, any JSON, any field types

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
ANY = JSON | st.sampled_from(["user", "assistant", "arith-chat", "", "  "])
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 3]), "text": st.text(max_size=80) | ANY}) | ANY
GOALS = st.fixed_dictionaries({k: (st.just(v) | ANY) for k, v in GOAL.items()}) | ANY
DIALOGUE = st.fixed_dictionaries(
    {"task": st.just("arith-chat") | ANY, "task_id": st.text(max_size=5) | ANY, "goal": GOALS, "messages": st.lists(MESSAGE, max_size=6) | ANY},
    optional={"user": ANY, "policy": ANY, "terminated": ANY, "scores": st.dictionaries(st.text(max_size=5), ANY, max_size=3) | ANY, "extra": ANY})
LINE = st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()) | DIALOGUE.map(lambda v: json.dumps(v).encode())

FUZZ = settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(lines=st.lists(LINE, min_size=1, max_size=3))
def test_fuzz_dialogue_files_give_dialogues_or_the_kits_error(tmp_path, lines):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    try:
        dialogues = read_dialogues(path, "arith-chat", SMALL)
    except InputError as e:
        assert e.path == str(path) and str(e).startswith(str(path)) and 0 <= e.line <= len(lines)
    else:
        for d in dialogues:
            check_dialogue(d, "arith-chat", SMALL)  # what was accepted is what the rest of the kit may rely on


COLLAB_ROW = st.fixed_dictionaries({
    "prompt": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "x"]), "content": st.text(max_size=40) | ANY}) | ANY,
                       max_size=3) | ANY,
    "completion": st.text(max_size=20) | ANY, "conv_id": st.integers(0, 9) | ANY, "turn_id": st.integers(0, 9) | ANY, "score": st.floats(0, 1) | ANY,
    "single_turn_prompt": st.text(max_size=20) | ANY, "single_turn_completion": st.text(max_size=20) | ANY, "single_turn_metadata": ANY,
})


@FUZZ
@given(lines=st.lists(st.binary(max_size=200) | COLLAB_ROW.map(lambda v: json.dumps(v).encode()), min_size=1, max_size=3))
def test_fuzz_collabllm_files_give_rows_or_the_kits_error(tmp_path, lines):
    path = tmp_path / "collab.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    try:
        rows = read_collabllm_rows(path, SMALL)
    except InputError as e:
        assert e.path == str(path) and str(e).startswith(str(path))
    else:
        assert all(isinstance(r["prompt"], list) and isinstance(r["single_turn_prompt"], str) for r in rows)


def test_collabllm_files_cut_short_empty_or_not_utf8_are_named(tmp_path):
    from pathlib import Path

    good = (Path(__file__).parent / "fixtures" / "collabllm-multiturn-math-hard.jsonl").read_bytes()
    cases = {"cut.jsonl": (good[: len(good) // 2], "cut.jsonl:2: not valid JSON"), "empty.jsonl": (b"", "empty.jsonl: the file holds no rows"),
             "bytes.jsonl": (good[:100] + b"\xff" + good[100:], r"bytes.jsonl:1: not UTF-8 text \(byte 0xff"),
             "array.json": (b'[{"prompt": 1}]', r"array.json: row 1: missing column")}
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=message):
            read_collabllm_rows(tmp_path / name)


# ----------------------------------------------------------------------------- through the commands

@pytest.fixture
def fake_adapter(tmp_path):
    """A folder that passes for a calibrated adapter: the logged dialogues are read (and refused) before it is loaded."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    return folder


@pytest.mark.parametrize("bad, message", [
    (row(goal={"problem": "x", "answer": 5}), "the goal lacks field"),
    (row(messages=[("user", "x " * 9000)]), "message 0 is 9,000 tokens long; the longest message accepted is 8,192 tokens .profile tiny"),
    (b'{"task": "arith-chat", "caf\xe9": 1}', "not UTF-8 text"),
    (row(messages=[("user", ""), *TURNS[1:]]), "message 0 is an empty user turn"),
])
def test_static_training_refuses_bad_logged_dialogues_in_one_line_and_leaves_nothing(tmp_path, capsys, fake_adapter, bad, message):
    traces, run = write(tmp_path / "logged.jsonl", row(), bad), tmp_path / "run"
    code = main(["train", "--method", "static", "--traces", str(traces), "--adapter", str(fake_adapter), "--out-dir", str(run)])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (a first test here also builds the world, with its bars)
    assert code == 2 and err.startswith(f"calirl train: error: {traces}:2: ")
    assert re.search(message, err), err
    assert not run.exists() and not (tmp_path / "run.lock").exists()


def test_calibration_refuses_bad_kept_traces_and_impossible_counts_before_making_a_folder(tmp_path, capsys):
    run = tmp_path / "calibrate"
    assert main(["calibrate", "--n-heldout", "100000", "--out-dir", str(run)]) == 2
    assert "asked for 100000 held-out traces" in capsys.readouterr().err and not run.exists() and not (tmp_path / "calibrate.lock").exists()
    run.mkdir()
    write(run / "traces.jsonl", row(goal={"answer": 5}))
    write(run / "heldout.jsonl", row(), row())
    assert main(["calibrate", "--out-dir", str(run)]) == 2
    assert f"{run / 'traces.jsonl'}:1: the goal lacks field" in capsys.readouterr().err and sorted(p.name for p in run.iterdir()) == ["heldout.jsonl", "traces.jsonl"]


@pytest.mark.parametrize("argv, flag, rule", [
    (["evaluate", "--seeds", "-1"], "--seeds", "an integer from 0 to 4294967295, got -1"),
    (["evaluate", "--seeds", "-60000"], "--seeds", "an integer from 0 to 4294967295, got -60000"),
    (["bench", "train", "--seed", "-1"], "--seed", "an integer from 0 to 4294967295, got -1"),
    (["bench", "rollout", "--dialogues", "0"], "--dialogues", "an integer ≥ 1, got 0"),
    (["train", "--seed", "4294967296"], "--seed", "an integer from 0 to 4294967295, got 4294967296"),
    (["train", "--group-size", "1"], "--group-size", "an integer ≥ 2, got 1"),
    (["calibrate", "--learning-rate", "nan"], "--learning-rate", "a number ≥ 0, got nan"),
    (["evaluate", "--n-eval", "ten"], "--n-eval", "an integer ≥ 1, got 'ten'"),
    (["world", "build", "--max-messages", "1"], "--max-messages", "an integer ≥ 2, got 1"),
    (["reproduce", "--gap-mixes", "0.5", "1.5"], "--gap-mixes", "a number from 0 to 1, got 1.5"),
    (["shift", "--n-offscript-kinds", "0", "--out", "x"], "--n-offscript-kinds", "an integer ≥ 1, got 0"),
])
def test_every_number_on_the_command_line_is_checked_by_one_rule_naming_the_flag(capsys, argv, flag, rule):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and err.endswith(f"error: argument {flag}: must be {rule}"), err


def test_settings_made_in_python_say_the_same_as_the_command_line():
    from calirl_lite.stages import TrainConfig

    with pytest.raises(ValueError, match="^group_size must be an integer ≥ 2, got 1$"):
        TrainConfig.make(group_size=1)
    with pytest.raises(ValueError, match="^seed must be an integer from 0 to 4294967295, got -1$"):
        TrainConfig.make(seed=-1)
