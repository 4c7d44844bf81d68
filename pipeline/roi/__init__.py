"""Box-guided matting and subject-tracking crops on the pipeline side (docs/roi.md)."""

from pipeline.roi.stage import RoiStage, open_roi

__all__ = ["RoiStage", "open_roi"]
