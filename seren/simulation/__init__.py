"""Closed-loop simulation (arms on the synthetic world) and replay on real logs (MovieLens)."""

from seren.simulation.engine import ARMS, METRICS, SimConfig, acceptance, simulate, sweep

__all__ = ["ARMS", "METRICS", "SimConfig", "acceptance", "simulate", "sweep"]
