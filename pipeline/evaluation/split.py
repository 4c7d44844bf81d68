"""The split between what a smoother may be tuned on and what it is judged on: the only place it is decided.

A case is one scene with one flicker family. Tuning uses three scenes (seeds 0-2, over the walkers,
box and tree clips) under the six synthetic families. Held out:

* ``held-out seed`` - the same six families on two other scenes (seeds 100 and 101), both with the
  film clip, a background no tuning case shows;
* ``held-out family`` - the ``network`` family (the demo model's own per-frame predictions) on five
  scenes of the seeds above whose backgrounds are the model's training texture (over real video the
  demo model, trained on synthetic scenes only, mistakes half the background for foreground: MAD
  ~350 x1e-3, gross errors, not flicker). It is the family left out because it is the one that
  matters: real footage flickers the way a network errs, and no synthetic family was built to imitate
  it, so tuning on synthetic errors and scoring on network errors measures whether a method
  generalises rather than fits a simulator.

``tuning_cases()`` is all a tuner should read; ``held_out_cases()`` is for the final figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from pipeline.evaluation.backgrounds import TEXTURE
from pipeline.evaluation.families import FAMILIES
from pipeline.evaluation.scenes import SceneSpec

NETWORK_FAMILY = "network"
TUNING, HELD_OUT_SEED, HELD_OUT_FAMILY = "tuning", "held-out seed", "held-out family"

TUNING_FAMILIES = tuple(FAMILIES)
HELD_OUT_FAMILIES = (NETWORK_FAMILY,)
TUNING_SCENES = (SceneSpec(0, ("walkers", "box")), SceneSpec(1, ("box", "tree")), SceneSpec(2, ("tree", "walkers")))
HELD_OUT_SCENES = (SceneSpec(100, ("film", "walkers")), SceneSpec(101, ("box", "film")))
NETWORK_SCENES = tuple(SceneSpec(spec.seed, (TEXTURE, TEXTURE)) for spec in TUNING_SCENES + HELD_OUT_SCENES)


@dataclass(frozen=True)
class Case:
    """One evaluation case: ``scene`` under flicker ``family`` (seeded by the scene's seed), in ``split``."""

    scene: SceneSpec
    family: str
    split: str

    @property
    def name(self) -> str:
        return f"{self.family}@{self.scene.name}"


def tuning_cases() -> list[Case]:
    """The cases a smoother may be tuned on."""
    return [Case(scene, family, TUNING) for scene, family in product(TUNING_SCENES, TUNING_FAMILIES)]


def held_out_cases() -> list[Case]:
    """The cases figures are reported on: new scenes under the tuning families, then the left-out family."""
    seeds = [Case(scene, family, HELD_OUT_SEED) for scene, family in product(HELD_OUT_SCENES, TUNING_FAMILIES)]
    families = [Case(scene, family, HELD_OUT_FAMILY) for scene, family in product(NETWORK_SCENES, HELD_OUT_FAMILIES)]
    return seeds + families


def cases_of(split: str) -> list[Case]:
    """``tuning``, ``held-out`` or ``all``."""
    if split == "tuning":
        return tuning_cases()
    if split == "held-out":
        return held_out_cases()
    if split == "all":
        return tuning_cases() + held_out_cases()
    raise ValueError(f"split must be tuning, held-out or all, got {split!r}")
