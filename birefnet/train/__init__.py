"""Training and fine-tuning of BiRefNet: data checks, augmentation, synthetic scenes, the official losses,
DIS and matting validation metrics, a single-process trainer with resume, and a Ray Train path
(``ray_train``, which alone imports ray). Import the module you need (``birefnet.train.loop`` for the
trainer): the package itself imports nothing, so rendering a scene does not load the trainer."""
