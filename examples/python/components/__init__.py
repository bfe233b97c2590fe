"""This program's own components package, as many Pulumi projects have one: pe-lb imports as
pe_lb, so the two never collide."""


def team_tags(team: str) -> dict[str, str]:
    """The tags this organisation puts on everything."""
    return {"team": team, "managed-by": "pulumi"}
