"""Where and how tensors compute, below the training loop: the device, threads, precision,
determinism and seeds (runtime, the `device` config group's target), and OpenMP's wait
policy, set before torch loads it (openmp)."""
