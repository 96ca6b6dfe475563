"""Volunteer teams: each compound's last-100-m carriers at the gate, their leader and daily
availability. The dispatch planner reads a team's day through ``service.team_days``."""
