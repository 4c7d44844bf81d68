"""Temporal alpha smoothing: steadies per-frame mattes without smearing motion.

BiRefNet mattes each frame on its own, so soft edges shimmer and thin parts blink. Every mode here
carries the previous smoothed alpha into the current frame and blends it with the new prediction
under a per-pixel confidence. The blending happens on the analysis thumbnails (long side 480 px); what
it changes in a thumbnail is upsampled and added to the frame's full-size alpha, so detail finer than
a thumbnail cell (4 px at 1080p) is each frame's own and never resampled by a warp; and only on the
frame's soft pixels: where its alpha is 0 or 1 (to 8 bits) the model's certainty stands:

* ``off``  - the per-frame alphas, untouched.
* ``ema``  - no motion compensation; confidence falls where the image changed, so still regions are
  averaged over many frames and moving ones keep the new prediction.
* ``flow`` (default) - where the image is still, as ``ema``; elsewhere the previous alpha is warped
  along the optical flow of the foreground (luma premultiplied by alpha, at reduced resolution:
  OpenCV DIS on the CPU, a pyramidal Lucas-Kanade in torch on a GPU), with confidence falling with
  the warp's photometric error and with speed (fast motion is where flow fails and ghosts appear).

How far a pixel leans on the carried alpha: in ``flow`` a learned gate decides (``gate``: a per-pixel
network of 81 weights, fitted on the evaluation's tuning split, ``pipeline.evaluation.gate_fit``), from
the measures below; ``ema`` (and ``flow`` with ``gate=hand``) multiplies them by hand: confidence falls
with disagreement between the carried and the new alpha, measured on thumbnails so boundary jitter
counts as noise and real changes do not, and wherever the carried alpha stands above everything the new
prediction holds within a few pixels (a ghost left behind by motion too thin or faint, like hair
strands, for the luma thumbnails to see), or below everything it holds there (a part back after a
drop-out, or one entering, which the past would leave a hole in).

8- and 16-bit alphas on the CPU, which the pipeline hands over, stay integers: the correction is added
to them by OpenCV on the soft pixels and rounded once, with no float copy of the frame in or out.

Scene cuts (colour-histogram jumps) reset the state, so no frame is blended across a cut. With
``window=N`` (batch work) each output also looks N frames ahead: a backward pass from the newest
frame's causal result is averaged with the causal result, and where the motion both ways is trusted
the median of the past carried in, the frame's own alpha and the future carried in drops a frame that
departs from both sides (a drop-out, a spike) and keeps a change either side shares; frames are held
back and returned by later calls or ``flush()``. State is a few frames, so memory stays bounded on any length of video.

Modules, in the order data flows: ``modes`` (the mode names, torch-free), ``config`` (the knobs),
``kernels`` (OpenCV for CPU tensors or torch ops on their device, and a switch that runs the GPU path
on the CPU), ``analysis`` (per-frame thumbnails, scene cuts), ``flow`` (optical flow, warp), ``maps`` (small map
operations), ``confidence`` (the motion models), ``gate`` (the learned gate and its measures),
``carry`` (the carry-over with the learned or the two hand-built gates, and the full-size correction),
``denormals`` (subnormal flushing around the arithmetic), ``smoother`` (the streaming smoothers and
``make_smoother``). This package's own import pulls in no torch.
"""
