"""Is this free-text reply's answer right? math-verify, within a time budget, from any thread.

Scripted users judge an assistant's math answer with :func:`math_correct`, and so does every reward computed from
it: a reply is read as a human would read it (the last number, ``\\boxed{}`` or LaTeX; ``3/4`` equals ``0.75``),
and no reply can stall a training step.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

ANSWER_SECONDS = 0.4
"""time budget of one answer check, parsing and comparison together: an answer not shown right within it is wrong"""
MAX_RESPONSE_CHARS = 20_000
"""the longest response whose answer is checked; a longer one counts as wrong unread (a chat reply is far shorter)"""

_WORKER: Any = None
_WORKER_LOCK = threading.Lock()
_WARM: list[bool] = []


class _OverBudget(BaseException):
    """Raised by the timer inside an answer check that ran out of time."""


def math_correct(response: str, reference: str, seconds: float = ANSWER_SECONDS) -> bool:
    r"""Whether the answer in ``response`` (free text, LaTeX, ``\boxed{}``) equals ``reference``, by math-verify.

    Never a stall: a response longer than :data:`MAX_RESPONSE_CHARS`, or one whose answer math-verify cannot parse
    and compare within ``seconds`` (both steps together), counts as wrong — so a policy that writes
    ``9**9**9**9`` or a megabyte of digits loses its reward instead of holding up a GRPO step. The budget is kept by
    a timer signal, which only a main thread may use; from any other thread the check runs in a helper process
    (started once), whose main thread keeps the time, and a helper that does not answer soon after is stopped.
    """
    if len(response) > MAX_RESPONSE_CHARS or len(reference) > MAX_RESPONSE_CHARS:
        return False
    if threading.current_thread() is threading.main_thread():
        return _math_correct(response, reference, seconds)
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            _WORKER = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
            atexit.register(_WORKER.shutdown, wait=False, cancel_futures=True)  # no teardown noise at exit
        worker = _WORKER
    try:
        return bool(worker.submit(_math_correct, response, reference, seconds).result(timeout=seconds + 20))  # + starting the helper
    except Exception:  # noqa: BLE001 - a helper that died or hung: the answer is not shown to be right
        with _WORKER_LOCK:
            if _WORKER is worker:  # start a new helper next time
                _WORKER = None
                for process in list(getattr(worker, "_processes", {}).values()):  # a hung helper is stopped, not waited for
                    process.terminate()
                worker.shutdown(wait=False, cancel_futures=True)
        return False


def _math_correct(response: str, reference: str, seconds: float) -> bool:
    """The check itself, on a main thread, with one timer for parsing and comparing (math-verify's own timeouts
    count whole seconds, for each step apart, so they are turned off and this one keeps the time)."""
    import signal

    import math_verify.grader
    import math_verify.parser
    from math_verify import parse, verify

    math_verify.parser.TIMEOUT_WARNING_SHOWN = math_verify.grader.TIMEOUT_WARNING_SHOWN = True  # its timer is off: this one keeps time
    if not _WARM:  # the first parse imports sympy's LaTeX machinery: not the answer's time
        _WARM.append(verify(parse("$1$", parsing_timeout=None), parse("$1$", parsing_timeout=None), timeout_seconds=None))

    def over(signum: int, frame: Any) -> None:
        raise _OverBudget

    previous = signal.signal(signal.SIGALRM, over)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            gold = parse(reference if "$" in reference or "\\" in reference else f"${reference}$", parsing_timeout=None)
            return bool(gold) and bool(verify(gold, parse(response, parsing_timeout=None), timeout_seconds=None))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _OverBudget:  # (also when the timer fires just as the check ends)
        return False
    finally:
        signal.signal(signal.SIGALRM, previous)


def boxed_answer(solution: str) -> str | None:
    r"""The content of the last ``\boxed{…}`` in a solution (braces matched), or None."""
    start = solution.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        if depth == 0:
            return solution[i:j]
    return None
