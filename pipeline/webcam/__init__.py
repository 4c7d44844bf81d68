"""The real-time demo: camera (or a file played as one) -> newest-frame-wins matting -> window or browser.

``capture`` feeds frames, ``engine`` mattes the newest one and keeps the speed figures, ``render``
draws the chosen view, ``display`` and ``server`` show it; ``pipeline.commands.webcam`` wires them.
"""
