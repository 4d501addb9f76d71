"""The model: finding, downloading and running a streaming MoViNet, one frame a step.

Nothing here knows about cameras, displays or outputs: ``model/`` imports only the
base modules (``errors``, ``progress``).
"""
