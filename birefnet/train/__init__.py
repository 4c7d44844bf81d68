"""Training and fine-tuning of BiRefNet: data checks, augmentation, synthetic scenes, the official losses,
DIS and matting validation metrics, and a single-process trainer with resume (``workers.ray_train`` runs
it on Ray Train). Import the module you need (``birefnet.train.loop`` for the
trainer): the package itself imports nothing, so rendering a scene does not load the trainer."""
