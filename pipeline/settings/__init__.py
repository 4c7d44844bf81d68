"""Settings of every command: one typed table of keys per command, shared by its flags and YAML presets.

``table`` holds the machinery (a ``Key`` per setting, flags from keys, presets, precedence), ``values``
the parsers every table uses, ``common`` the keys several commands share (one flag name per idea),
``presets`` finds and reads the YAML files, and one module per command (``process``, ``demo``,
``webcam``, ``train``, ``models``) declares its keys and its dataclass.
Nothing here imports torch, so ``birefnet-video --help`` stays fast.
"""
