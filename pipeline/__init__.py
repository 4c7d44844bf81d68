"""Video side of birefnet-video: sources, sinks, temporal smoothing, compositing, the streaming graph.

Nothing here imports Ray at module level; Ray lives in ``workers/``.
"""
