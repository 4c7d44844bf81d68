"""Peak CPU memory of one model call per working pixel: the figures behind ``birefnet.memory``.

Each measurement runs in a fresh process (so one size's freed memory cannot hide the next one's): build
the model (the bundled demo weights, or random weights for a backbone), warm it up at 64x64, then
``Predictor.predict`` one frame of the working size at fp32 and read the peak resident size
(``ru_maxrss``). The slope between two sizes is the memory one more working pixel costs, whatever the
weights and the interpreter take; it includes the frame's upload, float copy and resize.

    python -m benchmarks.activation_memory [--sizes 256 512] [--models demo swin_v1_t swin_v1_l]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MEASURE = """
import json, resource, sys
import numpy as np, torch
torch.set_num_threads(1)
from birefnet import Predictor
from birefnet.weights import build_model
model, size = sys.argv[1], int(sys.argv[2])
if model == "demo":
    predictor = Predictor("demo", device="cpu", precision="fp32", resolution=size)
else:
    predictor = Predictor.from_model(build_model(model), device="cpu", precision="fp32", resolution=size)
predictor.predict(np.zeros((1, 64, 64, 3), np.uint8))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
predictor.predict(np.zeros((1, size, size, 3), np.uint8))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kib": after, "before_kib": before}))
"""


def peak_kib(model: str, size: int) -> int:
    done = subprocess.run([sys.executable, "-c", MEASURE, model, str(size)], capture_output=True, text=True,
                          check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak_kib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[256, 512])
    parser.add_argument("--models", nargs="+", default=["demo", "swin_v1_t"])
    args = parser.parse_args()
    small, large = args.sizes
    for model in args.models:
        low, high = peak_kib(model, small), peak_kib(model, large)
        per_pixel = (high - low) * 1024 / (large * large - small * small)
        print(f"{model}: peak {low / 1024:.0f} MiB at {small}^2, {high / 1024:.0f} MiB at {large}^2: "
              f"{per_pixel:.0f} bytes per working pixel", flush=True)


if __name__ == "__main__":
    main()
