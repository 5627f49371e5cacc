"""Sweepers behind Hydra's `-m`: `search` is the `optuna_search` hyperparameter search, which
Hydra finds through the thin plugin module in hydra_plugins/multiclass_search."""
