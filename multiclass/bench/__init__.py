"""multiclass-bench: the framework's training speed beside the loops people write by hand.

Contestants train the same model on the same MNIST-shaped data for one epoch, in turn
(A B C A B C ...), each in a fresh process so that its peak memory is its own:

- seed-style: seed 000's loop: torchvision MNIST with ToTensor, DataLoader(shuffle=True),
  `.item()` every step;
- minimal: a hand-written loop over slices of a seeded permutation, nothing else;
- framework: `multiclass.lifecycle.run.execute`, the code path of `multiclass-train`, timed by the
  `train_seconds` its metrics.csv records (the training pass alone, as for the others);
- lightning and fastai, where installed (the `bench` extra): the frameworks users would pick
  instead, set up as their docs advise (lightning.py, fastai.py).

It also times whole `multiclass-train` processes (start-up, an 8-job sweep) and, for the CNN,
compares the speed reached with the floor that its FLOP count and this machine's measured
matrix-multiply rate give. It writes bench.md and bench.json. `--compile-run` instead times
whole seed runs with and without torch.compile (compile_run.py).

Its modules import one way only, top to bottom: cli (the command); compile_run; report;
contestants (which loads lightning and fastai only in the worker that runs them); processes and
machine; workloads, which every contestant shares.
"""
