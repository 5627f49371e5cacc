"""multiclass's Slurm launcher for Hydra (hydra/launcher=slurm, slurm_ddp)."""
