"""Where results go besides the screen: stdout (JSON lines, events), MQTT, the browser, clips.

``base`` is what every output is (a Sink of StepResults); each other module is one output.
"""
