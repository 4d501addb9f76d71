"""Where the picture goes and what it says: the overlay, what is shown, window, DRM preview.

``select`` makes the ``--display auto`` choice; ``shown`` decides which actions are shown
(threshold, hysteresis, ``--allow``/``--deny``); ``overlay`` draws them.
"""
