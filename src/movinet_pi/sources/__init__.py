"""Where frames come from: the Pi camera, OpenCV cameras, video files, network streams.

``base`` is what every source is (Frame, Source, its clock); ``open`` picks one
from a ``--source`` spec.
"""
