"""`python -m multiclass [overrides]`: the same app as `multiclass-train`."""

from multiclass.commands.train import main

if __name__ == "__main__":
    main()
