"""The SUMO twin: scenarios, the simulator adapter and runner, metrics, the benchmark, the hub
publisher and the algorithm registry. Only this package talks to libsumo/TraCI."""
