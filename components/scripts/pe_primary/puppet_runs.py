"""Puppet runs on the primary, as PE's own tooling does them: no splay, waiting for a held lock."""

import json
import os
import time

from .common import StepError, one_line, run, say
from .constants import PUPPET_RUN_OK
from .files import load_json, locked, read_text, replace
from .settings import Settings


class Puppet:
    def __init__(self, executable: str, settings: Settings, lock_timeout: float, poll: float) -> None:
        self.executable = executable
        self.settings = settings
        self.lock_timeout = lock_timeout
        self.poll = poll

    def run(self, why: str) -> None:
        self._refuse_if_disabled()
        deadline = time.monotonic() + self.lock_timeout
        waited = False
        while os.path.exists(self.settings.run_lockfile):
            if time.monotonic() > deadline:
                raise StepError(
                    f"another Puppet run on the primary held {self.settings.run_lockfile} "
                    f"for over {self.lock_timeout:.0f} s"
                )
            if not waited:
                say("waiting for the Puppet run in progress on the primary to finish")
                waited = True
            time.sleep(self.poll)
        self._refuse_if_disabled()
        say(f"running Puppet on the primary ({why})")
        argv = [
            self.executable,
            "agent",
            "--onetime",
            "--no-daemonize",
            "--no-splay",
            "--no-usecacheonfailure",
            "--detailed-exitcodes",
            "--verbose",
            "--color",
            "false",
        ]
        result = run(argv, merge_stderr=True)
        if result.returncode == 1 and os.path.exists(self.settings.run_lockfile):
            # Another run took the lock between the check and the start: wait for it, then run.
            return self.run(why)
        if result.returncode not in PUPPET_RUN_OK:
            raise StepError(
                f"the Puppet run on the primary failed (exit {result.returncode}): "
                + one_line(str(result.stdout), 400)
            )
        return None

    def _refuse_if_disabled(self) -> None:
        path = self.settings.disabled_lockfile
        if not os.path.exists(path):
            return
        try:
            reason = str(json.loads(read_text(path)).get("disabled_message", ""))
        except (OSError, ValueError, AttributeError):
            reason = ""
        raise StepError(
            "Puppet is disabled on the primary ({}); enable it with `puppet agent --enable` "
            "and run pe-lb again".format(reason or "no reason given")
        )


class CoalescedPrimaryRuns:
    """At most one primary Puppet run at a time, and none for a need an earlier-started run covers.

    Many compile masters joining at once each need the primary to run Puppet after their own
    first run. A run that *started* after a join's need arose covers that join, so joins that
    waited for the lock while it ran skip theirs: N joins cost one or two runs, not N.
    """

    def __init__(self, puppet: Puppet, state_dir: str) -> None:
        self.puppet = puppet
        self.state_path = os.path.join(state_dir, "primary-run.json")

    def ensure_run_after(self, needed_since: float, why: str) -> bool:
        """Run Puppet unless a run started after ``needed_since`` (epoch seconds); True if it ran."""
        with locked(self.state_path):
            try:
                last_start = float(load_json(self.state_path)["last_start"])
            except (KeyError, TypeError, ValueError):
                last_start = 0.0
            if last_start > needed_since:
                say(
                    "the primary's Puppet run started at {} covers {}: not running again".format(
                        time.strftime("%H:%M:%S", time.localtime(last_start)), why
                    )
                )
                return False
            started = time.time()
            self.puppet.run(why)
            replace(self.state_path, json.dumps({"last_start": started}) + "\n")
            return True
