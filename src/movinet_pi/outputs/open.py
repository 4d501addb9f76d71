"""Opening the outputs a run's flags ask for (stdout, ``--mqtt``, ``--web``, ``--record``),
all before the camera opens, so that a bad one is refused first; closing them again.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING, Sequence

from movinet_pi.log import say

if TYPE_CHECKING:  # imported for real where used: the CLI's `--help` stays fast
    from movinet_pi.outputs.base import Sink


def build_outputs(args: argparse.Namespace, title: str) -> list[Sink]:
    """Every output asked for, opened now so a bad one is refused before the camera opens."""
    from movinet_pi.health import HealthMonitor
    from movinet_pi.outputs.jsonlines import EventsSink, HumanSink, JsonLinesSink

    sinks: list[Sink] = []
    try:
        health = HealthMonitor().start()  # None read, no thread, where the Pi's files are missing
        sinks.append(health)  # (among the outputs so that the run stops it)
        if args.events:
            sinks.append(EventsSink(event_min_s=args.event_min_s))
        elif args.json:
            sinks.append(JsonLinesSink())
        else:
            sinks.append(HumanSink())
        if args.mqtt:
            from movinet_pi.outputs.home_assistant import HaDevice, HomeAssistant
            from movinet_pi.outputs.mqtt import MqttSink

            riders = ([HomeAssistant.rider(HaDevice.detect(args.name, args.ha_prefix), health,
                                           event_min_s=args.event_min_s)]
                      if args.ha_discovery else [])
            sinks.append(MqttSink.from_url(args.mqtt, ca_file=args.mqtt_ca, log=say,
                                           health=health, riders=riders,
                                           event_min_s=args.event_min_s))
        if args.web is not None:
            from movinet_pi.outputs.web import WebSink

            host, port = args.web
            sinks.append(WebSink(host, port, token=args.web_token, model_name=title, log=say,
                                 health=health, event_min_s=args.event_min_s))
        if args.record is not None:
            from movinet_pi.outputs.recording import ClipRecorder

            sinks.append(ClipRecorder(args.record, labels=args.record_labels or None,
                                      pre_seconds=args.pre_seconds,
                                      post_seconds=args.post_seconds,
                                      max_mb=args.record_max_mb, log=say,
                                      event_min_s=args.event_min_s))
    except BaseException:
        close_all(sinks)
        raise
    return sinks


def close_all(sinks: Sequence[Sink]) -> None:
    """Close every output, whatever one of them raises."""
    for sink in sinks:
        with contextlib.suppress(Exception):
            sink.close()
