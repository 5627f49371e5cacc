"""Many runs read together: a sweep's report (its jobs ranked, grouped over their seeds, with
intervals and tests; sweep.csv, .md, .html and .png) and two runs or groups side by side."""
