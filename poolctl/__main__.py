"""`python -m poolctl` from the project's folder; installed, the `poolctl` command runs the same."""

from components.poolctl.cli import run

run()
