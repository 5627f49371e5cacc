"""The command-line tools, one module each: train (the Hydra app), report, bench, reproduce."""
