"""A second yardstick from outside the project: a plain SimPy M/M/10 queue at load 0.9, one process per patient.

Poisson arrivals, ten servers (a simpy.Resource), exponential service, first come first served: the textbook
discrete-event model that any SimPy user would write first. Its patients a second are what "as fast as plain
SimPy" means on this machine, whatever this project's own model does per patient; the engine's pathways a second
are compared with it (issue 13: at least 10x). Its mean wait is checked against Erlang C, so the yardstick is
known to be a correct queue and not merely a fast loop.
"""
from __future__ import annotations

import numpy as np
import simpy

SERVERS = 10
LOAD = 0.9                 # rho = lambda / (c mu)
MEAN_SERVICE = 1.0         # time units; only ratios matter


def run_mm10(patients: int, seed: int = 20211) -> dict[str, float]:
    """Simulate `patients` arrivals; return how many were served and their mean wait in queue."""
    rng = np.random.default_rng(seed)
    arrival_rate = LOAD * SERVERS / MEAN_SERVICE
    gaps = rng.exponential(1 / arrival_rate, patients).tolist()
    services = rng.exponential(MEAN_SERVICE, patients).tolist()
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=SERVERS)
    waits: list[float] = []

    def patient(service: float):   # one process per patient, as the SimPy documentation's examples do
        arrived = env.now
        with servers.request() as turn:
            yield turn
            waits.append(env.now - arrived)
            yield env.timeout(service)

    def arrivals():
        for gap, service in zip(gaps, services, strict=True):
            yield env.timeout(gap)
            env.process(patient(service))

    env.process(arrivals())
    env.run()
    return {"served": len(waits), "mean_wait": float(np.mean(waits))}


def erlang_c_mean_wait(servers: int = SERVERS, load: float = LOAD, mean_service: float = MEAN_SERVICE) -> float:
    """Wq of an M/M/c queue (FACTS.md formula 3), for the check above."""
    a = load * servers
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= a / k
        total += term
    top = term * a / servers * servers / (servers - a)
    return top / (total + top) * mean_service / (servers - a)
