"""`birefnet-video demo` end to end at reduced length: real encode, real pipeline, bundled demo model."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from birefnet.train.scenes import SyntheticScene
from run_pipeline import main

FRAMES, WIDTH, HEIGHT = 4, 96, 64


@pytest.mark.slow
def test_demo_writes_prores_green_screen_and_contact_sheet(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "-o", str(out), "--length", str(FRAMES), "--size", f"{WIDTH}x{HEIGHT}",
                 "--resolution", "64", "--sheet-frames", "2", "--device", "cpu", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("MAD ")

    with av.open(str(out / "rgba.mov")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "prores" and stream.codec_context.pix_fmt.startswith("yuva444p")
        rgba = np.stack([f.to_ndarray(format="rgba") for f in container.decode(video=0)])
    with av.open(str(out / "green.mp4")) as container:
        green = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert rgba.shape == (FRAMES, HEIGHT, WIDTH, 4) and green.shape == (FRAMES, HEIGHT, WIDTH, 3)

    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 3 * 256 and sheet.shape[0] == 2 * round(HEIGHT * 256 / WIDTH)

    report = json.loads((out / "report.json").read_text())
    _, truth = SyntheticScene(11, FRAMES, HEIGHT, WIDTH).frames()
    mad = np.abs(rgba[..., 3] / 255.0 - truth).mean() * 1e3
    assert report["mad_x1e3"] == pytest.approx(mad, rel=1e-4)
    assert np.isfinite(report["dtssd_x1e2"]) and report["frames"] == FRAMES

    # a second run keeps the first one's files unless told otherwise: skipped, like `process`, exit 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["demo", "-o", str(out), "--length", str(FRAMES)]) == 0
    assert f"demo: skipped, {out} already holds one" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_demo_into_a_file_is_one_line(tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me")
    assert main(["demo", "-o", str(taken), "--length", "2"]) == 4
    assert capsys.readouterr().err == f"error: demo: {taken} is a file; -o names the folder for the demo's files\n"
    assert taken.read_text() == "keep me"
