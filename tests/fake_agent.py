"""A stand-in for an agent CLI, for planrun's tests (run it with ``python3``; standard library only).

It reads its prompt, acts on directives in the task's description (one per
line), and prints a JSON line with its usage, as an agent CLI would.

Usage::

    fake_agent.py PROMPT_FILE            the prompt from a file ({prompt_file})
    fake_agent.py --text PROMPT          the prompt as an argument ({prompt})
    fake_agent.py --as CLI ARGS...       behave as CLI (claude, codex, gemini, opencode, aider):
                                         find the prompt in ARGS as that CLI would, print its format

Directives (in the task description, each on its own line):

    WRITE path: text          write ``text`` and a newline to ``path`` (relative to the cwd)
    WRONG-FIRST path: a | b   write ``a``; on a retry (the prompt holds the failure report) write ``b``
    SAY line                  print ``line`` on stdout before the usage line
    JSON {...}                print this object instead of the usage line
    OPENAI-USAGE              report usage as prompt_tokens/completion_tokens, cost as ``cost``
    EXIT n                    print an error on stderr and exit with ``n`` (after the usage line)
    KILL-SELF                 end by SIGKILL
    SLEEP                     sleep for 300 seconds
    ESCAPE                    start ``setsid sleep 300`` in the background, record its pid, exit
    ALIVE path                write to ``path`` the ESCAPE pids of earlier runs (in the log) still alive, or "none"

If the environment has ``FAKE_AGENT_LOG`` (a file outside the workdir), each
run appends one JSON line: argv, cwd, the prompt, where it came from, the
value of ``FAKE_AGENT_CANARY`` and the pid of an ESCAPE sleeper.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

TOKENS_IN = 1000
TOKENS_OUT = 50
COST = 0.25
RETRY = "the previous attempt did not pass"
DIRECTIVE = re.compile(r"^(WRITE|WRONG-FIRST|SAY|JSON|OPENAI-USAGE|EXIT|KILL-SELF|SLEEP|ESCAPE|ALIVE)\b ?(.*)$", re.M)


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def read_prompt(args: list[str]) -> tuple[str, str, str]:
    """``(prompt, how it came, the CLI imitated or "")``."""
    if args[0] == "--text":
        return args[1], "argument", ""
    if args[0] == "--as":
        cli, rest = args[1], args[2:]
        if cli in ("claude", "gemini"):
            return _after(rest, "-p"), "argument", cli
        if cli in ("codex", "opencode"):
            return rest[-1], "argument", cli
        if cli == "aider":
            path = _after(rest, "--message-file")
            with open(path, encoding="utf-8") as f:
                return f.read(), path, cli
        raise SystemExit(f"fake_agent: unknown CLI {cli}")
    with open(args[0], encoding="utf-8") as f:
        return f.read(), args[0], ""


def task_section(prompt: str) -> str:
    """The part of the prompt about this task (directives elsewhere, e.g. in the overview, are ignored)."""
    start = prompt.find("# Your task:")
    end = prompt.find("\n# ", start + 1)
    return prompt[start : end if end > 0 else None] if start >= 0 else ""


def write(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def alive_escapees() -> list[int]:
    """The ESCAPE pids in the log whose process still runs (a zombie counts as gone)."""
    log, alive = os.environ.get("FAKE_AGENT_LOG"), []
    if log and os.path.exists(log):
        with open(log, encoding="utf-8") as f:
            pids = [json.loads(line).get("escaped") for line in f]
        for pid in filter(None, pids):
            try:
                with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        alive.append(pid)
            except OSError:
                pass
    return alive


def output(cli: str, message: str, openai: bool) -> str:
    """What the imitated CLI prints at the end, with the usage."""
    if cli == "claude":
        usage = {"input_tokens": TOKENS_IN - 300, "cache_read_input_tokens": 300, "output_tokens": TOKENS_OUT}
        return json.dumps(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "result": message,
                "num_turns": 2,
                "total_cost_usd": COST,
                "usage": usage,
            },
            indent=2,  # claude prints one object; planrun must not need it on one line
        )
    if cli == "codex":
        events = [
            {"type": "thread.started", "thread_id": "t1"},
            {"type": "turn.started"},
            {"type": "item.completed", "item": {"id": "i0", "type": "agent_message", "text": "looking"}},
            {"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": message}},
            {"type": "turn.completed", "usage": {"input_tokens": TOKENS_IN, "output_tokens": TOKENS_OUT}},
        ]
        return "\n".join(json.dumps(e) for e in events)
    if cli == "gemini":
        tokens = {"prompt": TOKENS_IN, "candidates": TOKENS_OUT, "total": TOKENS_IN + TOKENS_OUT}
        return json.dumps({"response": message, "stats": {"models": {"gemini-x": {"tokens": tokens}}}})
    if cli == "opencode":
        events = [
            {"type": "step_start", "part": {}},
            {"type": "text", "part": {"text": message}},
            {"type": "step_finish", "part": {"tokens": {"input": TOKENS_IN, "output": TOKENS_OUT}, "cost": COST}},
        ]
        return "\n".join(json.dumps(e) for e in events)
    if cli == "aider":
        return f"{message}\nTokens: {TOKENS_IN / 1000:g}k sent, {TOKENS_OUT} received. Cost: ${COST} message, ${COST} session."
    if openai:
        return json.dumps({"usage": {"prompt_tokens": TOKENS_IN, "completion_tokens": TOKENS_OUT}, "cost": COST})
    return json.dumps(
        {"usage": {"input_tokens": TOKENS_IN, "output_tokens": TOKENS_OUT}, "total_cost_usd": COST, "result": message}
    )


def main(args: list[str]) -> int:
    prompt, source, cli = read_prompt(args)
    retry = RETRY in prompt
    record: dict[str, object] = {
        "argv": args,
        "cwd": os.getcwd(),
        "prompt": prompt,
        "source": source,
        "canary": os.environ.get("FAKE_AGENT_CANARY"),
    }
    wrote, said, exit_code, custom, openai = [], [], 0, None, False
    for kind, rest in DIRECTIVE.findall(task_section(prompt)):
        if kind == "WRITE":
            path, _, text = rest.partition(": ")
            write(path, text)
            wrote.append(path)
        elif kind == "WRONG-FIRST":
            path, _, texts = rest.partition(": ")
            wrong, _, right = texts.partition(" | ")
            write(path, right if retry else wrong)
            wrote.append(path)
        elif kind == "SAY":
            said.append(rest)
        elif kind == "JSON":
            custom = rest
        elif kind == "OPENAI-USAGE":
            openai = True
        elif kind == "EXIT":
            exit_code = int(rest)
        elif kind == "KILL-SELF":
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "SLEEP":
            time.sleep(300)
        elif kind == "ESCAPE":
            sleeper = subprocess.Popen(["setsid", "sleep", "300"], stdin=subprocess.DEVNULL)
            record["escaped"] = sleeper.pid
        elif kind == "ALIVE":
            write(rest, "alive: " + (" ".join(map(str, alive_escapees())) or "none"))
    log = os.environ.get("FAKE_AGENT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    for line in said:
        print(line)
    message = f"wrote {', '.join(wrote) or 'nothing'}" + (" (retry)" if retry else "")
    print(custom if custom is not None else output(cli, message, openai))
    if exit_code:
        print("fake_agent: something went wrong", file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
