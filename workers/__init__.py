"""Matting workers: predictors placed on devices, in this process or on Ray actors.

Speaks arrays and keys only (``base``: the backend interface, its config, stats and errors), imports
nothing of ``pipeline``, and is the one place the product imports Ray. ``matting``: what a worker does
with a batch; ``local`` and ``ray_actors``: the two backends; ``factory.create_backend``: pick one;
``dataset``: archive units on Ray Data; ``ray_train``: the trainer of ``birefnet.train`` on Ray Train.
"""
