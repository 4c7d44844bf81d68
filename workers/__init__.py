"""Matting workers: Ray actors and the in-process backend that feed the streaming graph."""
