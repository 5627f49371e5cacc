"""One run's life: the device it runs on, executing it, and the files it leaves behind."""
