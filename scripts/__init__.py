"""Repository scripts, runnable as modules: ``python -m scripts.deploy_space``, ``python -m scripts.make_examples``."""
