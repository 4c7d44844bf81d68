"""The CPU smoother's two busiest steps as compiled per-pixel passes (numba): the flow model's confidence
maps, and the learned-gate blend.

In torch each of their steps is a pass over the whole thumbnail (480x270 at 1080p) that reads and
writes maps through memory, and the gate's 8 x 8 layer alone moves 8 MB; together they were about half
of the causal smoother's CPU time at 1080p. Here the maps are computed in a few passes that keep their
values in registers, and the blend runs the gate's network only where its weight can matter: where the
ghost and fill gates leave it open and the carried state differs from the new alpha (elsewhere the
blend is the new alpha whatever the weight), a chunk of pixels at a time in cache.

The arithmetic is that of ``confidence.FlowModel``'s torch path (with OpenCV's replicated borders for the
3x3 means), ``gate.gate_features``, ``LearnedGate.forward``, ``carry.hand_gates`` and ``torch.lerp``, in
float32, written out per pixel; it agrees with them to float rounding (tests/test_temporal.py). The
exponentials stay in torch, whose vector ``exp`` is ~15x faster than a scalar one here. The GPU path
keeps the torch ops.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

_F32 = np.float32
_CHUNK = 256  # pixels per pass of the gate's network: its buffers (12 x 256 floats) stay in the L1 cache
_MEASURES = 8  # gate.FEATURES, written out by hand in _blend_kernel
_FALLOFF_LIMIT = _F32(13.8)  # confidence._falloff's floor: exp(-13.8) ~ 1e-6, never a subnormal
# Divisions as numpy does them, without Python's zero-division check (no divisor here, nor in the edge
# rebuild's passes of edges.py, can be 0): the check's branch kept LLVM from vectorising any loop with a
# division (the confidence pass ran ~1.8x slower).
compiled = numba.njit(nogil=True, cache=True, error_model="numpy")


@compiled
def _mean3(values, rows, out):
    """3x3 mean of ``values`` (h, w) into ``out``, borders replicated (cv2.blur's BORDER_REPLICATE);
    ``rows`` is scratch of the same shape."""
    height, width = values.shape
    for y in range(height):
        line, total = values[y], rows[y]
        total[0] = line[0] + line[0] + line[min(1, width - 1)]
        for x in range(1, width - 1):
            total[x] = line[x - 1] + line[x] + line[x + 1]
        if width > 1:
            total[width - 1] = line[width - 2] + line[width - 1] + line[width - 1]
    ninth = _F32(1.0) / _F32(9.0)
    for y in range(height):
        above, middle, below, line = rows[max(y - 1, 0)], rows[y], rows[min(y + 1, height - 1)], out[y]
        for x in range(width):
            line[x] = (above[x] + middle[x] + below[x]) * ninth


@compiled
def _falloff_exponents(target_luma, source_luma, warped_luma, warp_error_scale, motion_scale,
                       scratch, rows, exponents):
    """-min((x / scale)^2, limit) of the 3x3 mean |luma change| along the flow (``exponents[0]``, the warp's
    error) and in place (``exponents[1]``, the stillness)."""
    height, width = target_luma.shape
    for k, (other, scale) in enumerate(((warped_luma, warp_error_scale), (source_luma, motion_scale))):
        for y in range(height):
            for x in range(width):
                scratch[y, x] = abs(target_luma[y, x] - other[y, x])
        plane = exponents[k]
        _mean3(scratch, rows, plane)
        for y in range(height):
            for x in range(width):
                ratio = plane[y, x] / scale
                plane[y, x] = -min(ratio * ratio, _FALLOFF_LIMIT)


@compiled
def _confidence_kernel(falloffs, flow_x, flow_y, warped_alpha, source_alpha, target_alpha,
                       flow_speed_scale, disagreement_scale, scratch, rows, confidence, stillness, motion):
    height, width = target_alpha.shape
    one = _F32(1.0)
    speed_scale2 = flow_speed_scale * flow_speed_scale
    for y in range(height):
        for x in range(width):
            squared_speed = flow_x[y, x] * flow_x[y, x] + flow_y[y, x] * flow_y[y, x]
            flow_confidence = falloffs[0, y, x] / (one + squared_speed / speed_scale2)
            still = falloffs[1, y, x]
            stillness[y, x] = still
            motion[y, x] = still + (one - still) * flow_confidence
            carried = warped_alpha[y, x] + still * (source_alpha[y, x] - warped_alpha[y, x])
            scratch[y, x] = abs(target_alpha[y, x] - carried)
    _mean3(scratch, rows, confidence)  # the alphas' disagreement, then confidence._agreement
    least, most = _F32(1e-2), _F32(1e3)
    inverse_scale = _F32(1.0 / disagreement_scale)
    for y in range(height):
        for x in range(width):
            ratio = min(max(confidence[y, x] * inverse_scale, least), most)
            ratio *= ratio
            confidence[y, x] = motion[y, x] * (one / (ratio * ratio + one))


def flow_confidence_maps(target_luma: torch.Tensor, source_luma: torch.Tensor, warped_luma: torch.Tensor,
                         warped_alpha: torch.Tensor, source_alpha: torch.Tensor, target_alpha: torch.Tensor,
                         flow: torch.Tensor, warp_error_scale: float, motion_scale: float, flow_speed_scale: float,
                         disagreement_scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``FlowModel.transition``'s confidence, stillness and motion maps (1, 1, h, w) from CPU float32
    (1, 1, h, w) thumbnails and the (1, 2, h, w) flow."""
    shape = target_alpha.shape[-2:]
    scratch, rows = np.empty(shape, _F32), np.empty(shape, _F32)
    falloffs = torch.empty((2, *shape))
    _falloff_exponents(_plane(target_luma), _plane(source_luma), _plane(warped_luma), _F32(warp_error_scale),
                       _F32(motion_scale), scratch, rows, falloffs.numpy())
    falloffs.exp_()
    confidence, stillness, motion = (torch.empty(1, 1, *shape) for _ in range(3))
    planes = np.ascontiguousarray(flow[0].numpy(), dtype=_F32)
    _confidence_kernel(falloffs.numpy(), planes[0], planes[1], _plane(warped_alpha), _plane(source_alpha),
                       _plane(target_alpha), _F32(flow_speed_scale), _F32(disagreement_scale), scratch, rows,
                       _plane(confidence), _plane(stillness), _plane(motion))
    return confidence, stillness, motion


@compiled
def _blend_kernel(state, alpha, peak, trough, motion, confidence, stillness,
                  hidden_weight, hidden_bias, output_weight, output_bias, ghost_scale, out):
    n = state.size
    units = hidden_weight.shape[0]
    index = np.empty(_CHUNK, np.int64)
    gates = np.empty(_CHUNK, _F32)
    measures = np.empty((_MEASURES, _CHUNK), _F32)
    logits = np.empty(_CHUNK, _F32)
    zero, one, ten, four = _F32(0.0), _F32(1.0), _F32(10.0), _F32(4.0)
    inverse_scale = _F32(1.0 / ghost_scale)
    p = 0
    while p < n:
        count = 0
        while p < n and count < _CHUNK:  # carry.hand_gates, and which pixels need the network
            s, a = state[p], alpha[p]
            above = min(max(peak[p] - s, -ghost_scale), zero)
            below = min(max(trough[p] - s, zero), ghost_scale)
            gate = (above - below) * inverse_scale + one
            if gate == zero or s == a:
                out[p] = a
            else:
                index[count], gates[count] = p, gate
                count += 1
            p += 1
        for j in range(count):  # gate.gate_features
            q = index[j]
            s, a = state[q], alpha[q]
            measures[0, j] = abs(s - a) * ten
            measures[1, j] = max(s - peak[q], zero) * ten
            measures[2, j] = max(trough[q] - s, zero) * ten
            measures[3, j] = motion[q]
            measures[4, j] = confidence[q]
            measures[5, j] = stillness[q]
            measures[6, j] = a * (one - a) * four
            measures[7, j] = a
        for j in range(count):
            logits[j] = output_bias[0]
        for u in range(units):  # LearnedGate.forward, one hidden unit at a time over the chunk
            w0, w1, w2, w3 = hidden_weight[u, 0], hidden_weight[u, 1], hidden_weight[u, 2], hidden_weight[u, 3]
            w4, w5, w6, w7 = hidden_weight[u, 4], hidden_weight[u, 5], hidden_weight[u, 6], hidden_weight[u, 7]
            bias, weight = hidden_bias[u], output_weight[u]
            for j in range(count):
                h = (bias + w0 * measures[0, j] + w1 * measures[1, j] + w2 * measures[2, j] + w3 * measures[3, j]
                     + w4 * measures[4, j] + w5 * measures[5, j] + w6 * measures[6, j] + w7 * measures[7, j])
                logits[j] += weight * max(h, zero)
        for j in range(count):  # the sigmoid, the weight, and torch.lerp's two-sided formula
            q = index[j]
            s, a = state[q], alpha[q]
            w = gates[j] * (one / (one + np.exp(-logits[j])))
            out[q] = a + w * (s - a) if w < _F32(0.5) else s - (s - a) * (one - w)


def learned_blend(state: torch.Tensor, alpha: torch.Tensor, peak: torch.Tensor, trough: torch.Tensor,
                  motion: torch.Tensor, confidence: torch.Tensor, stillness: torch.Tensor,
                  layers: tuple[torch.nn.Linear, torch.nn.Linear], ghost_scale: float) -> torch.Tensor:
    """``lerp(alpha, state, hand_gates x gate(measures))`` of CPU float32 (1, 1, h, w) maps (the seven of
    ``gate.measure_maps``) for the gate of ``layers`` (hidden, output), as a new map."""
    hidden, output = layers
    if hidden.in_features != _MEASURES or output.out_features != 1:
        raise ValueError(f"the compiled blend takes a gate of {_MEASURES} measures and one output")
    out = torch.empty(alpha.shape)  # contiguous whatever alpha's strides: the kernel writes through a view
    weights = [t.detach().contiguous().numpy() for t in (hidden.weight, hidden.bias, output.weight[0], output.bias)]
    _blend_kernel(_flat(state), _flat(alpha), _flat(peak), _flat(trough), _flat(motion), _flat(confidence),
                  _flat(stillness), weights[0], weights[1], weights[2], weights[3], _F32(ghost_scale), _flat(out))
    return out


def _plane(x: torch.Tensor) -> np.ndarray:
    """The (h, w) float32 plane of a CPU (1, 1, h, w) map, contiguous (a view when it already is)."""
    return np.ascontiguousarray(x[0, 0].numpy(), dtype=_F32)


def _flat(x: torch.Tensor) -> np.ndarray:
    """``_plane(x)`` as one row of pixels (a view: ``out`` is written through it)."""
    return _plane(x).reshape(-1)

