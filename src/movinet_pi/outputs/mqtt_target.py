"""Where MQTT publishes: the ``--mqtt`` URL (:class:`MqttTarget`) and the broker password.

The password never comes from a flag (flags show in ``ps``, shell history and
unit files): it comes from ``$MOVINET_PI_MQTT_PASSWORD`` or the file named by
``$MOVINET_PI_MQTT_PASSWORD_FILE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlsplit

from movinet_pi.errors import MovinetPiError

MQTT_PASSWORD_ENV = "MOVINET_PI_MQTT_PASSWORD"
MQTT_PASSWORD_FILE_ENV = "MOVINET_PI_MQTT_PASSWORD_FILE"
DEFAULT_MQTT_PREFIX = "movinet-pi"
_MQTT_EXAMPLE = "e.g. mqtt://broker.local or mqtt://user@broker.local:1883/home/cam1"


@dataclass(frozen=True)
class MqttTarget:
    """Where to publish: a broker and a topic prefix (from ``--mqtt URL``).

    ``prefix`` is None when the URL names none: the topics then go under
    ``movinet-pi/<device id>`` (:meth:`for_device`), so that Pis sharing a broker
    never share a topic. A prefix the user names is kept as given.
    """

    host: str
    port: int = 1883
    prefix: str | None = None
    username: str | None = None
    tls: bool = False

    def for_device(self, device_id: str) -> MqttTarget:
        """This target with its prefix settled: the default one made per device."""
        if self.prefix is not None:
            return self
        return replace(self, prefix=f"{DEFAULT_MQTT_PREFIX}/{device_id}")

    def topic(self, name: str) -> str:
        """``<prefix>/<name>``; the prefix must be settled (:meth:`for_device`)."""
        if self.prefix is None:
            raise ValueError("the default MQTT prefix needs the device id: use for_device()")
        return f"{self.prefix}/{name}"

    @property
    def events_topic(self) -> str:
        return self.topic("events")

    @property
    def state_topic(self) -> str:
        return self.topic("state")

    @property
    def availability_topic(self) -> str:
        return self.topic("availability")

    @property
    def url(self) -> str:
        """The target as a URL (never with a password: there is none to show)."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = "" if self.prefix is None else f"/{self.prefix}"
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}{path}"


def parse_mqtt_url(text: str) -> MqttTarget:
    """``mqtt[s]://[user@]host[:port][/prefix]`` -> :class:`MqttTarget`.

    The port defaults to 1883 (8883 for ``mqtts``); no prefix leaves it None (the
    per-device default, :meth:`MqttTarget.for_device`). A password in the URL is
    refused (it would sit in the shell history, ``ps`` and a unit file): it comes
    from ``$MOVINET_PI_MQTT_PASSWORD`` or the file named by
    ``$MOVINET_PI_MQTT_PASSWORD_FILE``. Errors are one line; none of them repeats a
    URL that may hold a password.
    """
    text = text.strip()
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in ("mqtt", "mqtts"):
        raise MovinetPiError(f"an MQTT URL starts with mqtt:// or mqtts:// ({_MQTT_EXAMPLE})")
    rest = text.split("://", 1)[1]
    userinfo = rest.split("@", 1)[0] if "@" in rest else ""
    # (looked for before urlsplit: a password may hold '#', '?' or anything else)
    if ":" in userinfo and "/" not in userinfo:
        raise MovinetPiError(f"don't put the MQTT password in the URL: set ${MQTT_PASSWORD_ENV} "
                             f"or ${MQTT_PASSWORD_FILE_ENV} (a file holding it) instead")
    if "#" in rest or "+" in rest.split("@")[-1]:
        raise MovinetPiError("'+' and '#' are MQTT wildcards: the topic prefix we publish "
                             f"under cannot hold them ({_MQTT_EXAMPLE})")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise MovinetPiError(f"bad port in the MQTT URL: want a number 1-65535 "
                             f"({_MQTT_EXAMPLE})") from None
    if parts.password is not None:  # pragma: no cover - caught above
        raise MovinetPiError(f"don't put the MQTT password in the URL: set ${MQTT_PASSWORD_ENV} "
                             f"or ${MQTT_PASSWORD_FILE_ENV} (a file holding it) instead")
    if parts.query or text.endswith("?"):
        raise MovinetPiError(f"an MQTT URL takes no ?query ({_MQTT_EXAMPLE})")
    host = parts.hostname or ""
    if not host:
        raise MovinetPiError(f"no broker host in the MQTT URL {text!r} ({_MQTT_EXAMPLE})")
    if port is not None and not 1 <= port <= 65535:
        raise MovinetPiError(f"bad port {port} in the MQTT URL: want 1-65535")
    username = None
    if parts.username is not None:
        username = unquote(parts.username)
        if not username:
            raise MovinetPiError(f"empty user name in the MQTT URL {text!r} "
                                 "(write mqtt://USER@host/prefix, or no @)")
    tls = scheme.lower() == "mqtts"
    prefix = unquote(parts.path).strip("/") or None
    problem = None if prefix is None else topic_prefix_problem(prefix)
    if problem:
        raise MovinetPiError(f"bad topic prefix {prefix!r} in the MQTT URL: {problem}")
    return MqttTarget(host=host, port=port or (8883 if tls else 1883), prefix=prefix,
                      username=username, tls=tls)


def topic_prefix_problem(prefix: str) -> str | None:
    """What is wrong with a topic prefix we publish under, or None."""
    if "+" in prefix or "#" in prefix:
        return "'+' and '#' are wildcards, not allowed in a topic we publish to"
    if "//" in prefix:
        return "empty topic level ('//')"
    if prefix.startswith("$"):
        return "topics starting with '$' are the broker's own"
    if "\0" in prefix or any(ch in prefix for ch in "\r\n"):
        return "control characters"
    if len(prefix.encode("utf-8")) > 1000:
        return "too long"
    return None


def mqtt_password(env: Mapping[str, str] | None = None) -> str | None:
    """The broker password from ``$MOVINET_PI_MQTT_PASSWORD`` or the file named by
    ``$MOVINET_PI_MQTT_PASSWORD_FILE`` (its first line), or None. Never from a flag:
    flags show in ``ps`` and shell history. A file suits a service: ``chmod 600``."""
    env = os.environ if env is None else env
    value = env.get(MQTT_PASSWORD_ENV)
    file_name = env.get(MQTT_PASSWORD_FILE_ENV)
    if value and file_name:
        raise MovinetPiError(f"set ${MQTT_PASSWORD_ENV} or ${MQTT_PASSWORD_FILE_ENV}, not both")
    if value:
        return value
    if not file_name:
        return None
    try:
        text = Path(file_name).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise MovinetPiError(f"cannot read the MQTT password file {file_name} "
                             f"(${MQTT_PASSWORD_FILE_ENV}): {reason}") from None
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise MovinetPiError(f"the MQTT password file {file_name} "
                             f"(${MQTT_PASSWORD_FILE_ENV}) is empty")
    return password
