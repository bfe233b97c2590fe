"""What every step shares: one-line failures, progress lines, commands, bounded waits."""

import re
import subprocess
import time
from typing import Any, Callable, List

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class StepError(Exception):
    """A failure reported to the user in one line, without a traceback."""


def say(message: str) -> None:
    print(message, flush=True)


def one_line(text: str, limit: int = 500) -> str:
    """Command output as one readable line: colour escapes gone, whitespace folded, the tail kept."""
    folded = " ".join(_ANSI_ESCAPE.sub("", text).split())
    return folded[-limit:]


def run(argv: List[str], merge_stderr: bool = False) -> "subprocess.CompletedProcess[str]":
    """``argv`` run to its end, its output decoded as UTF-8 whatever the locale; StepError if it
    cannot start. ``merge_stderr``: error output interleaved into stdout, as a Puppet run prints."""
    try:
        return subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            universal_newlines=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as error:
        raise StepError(f"cannot run {argv[0]}: {error}") from None


def run_checked(argv: List[str]) -> str:
    """Standard output of ``argv``; StepError with its (uncoloured) error output if it fails."""
    result = run(argv)
    if result.returncode != 0:
        raise StepError(
            "{} exited {}: {}".format(" ".join(argv[:3]), result.returncode, one_line(result.stderr))
        )
    return str(result.stdout)


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float, on_timeout: str) -> Any:
    """Poll ``check`` until it returns something truthy; StepError ``on_timeout`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepError(on_timeout)
        if not announced:
            say(f"waiting for {what} (up to {timeout:.0f} s)")
            announced = True
        time.sleep(poll)
