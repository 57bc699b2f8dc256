"""The simulation pipeline: closed-loop arms on the synthetic world (+ sweep, + MovieLens replay)."""
