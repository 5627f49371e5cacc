"""`python -m multiclass [overrides]`: the same app as `multiclass-train`."""

from multiclass.cli import main

if __name__ == "__main__":
    main()
