"""A paho MQTT client for a target: the installed version checked, an id, login, TLS.

One place makes the client both the MQTT output (:mod:`movinet_pi.outputs.mqtt`)
and ``movinet-pi ha-remove`` use; they add their own callbacks and last will.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.outputs.mqtt_target import MqttTarget

if TYPE_CHECKING:  # pragma: no cover
    from paho.mqtt.client import Client as PahoClient

def pip_command() -> str:
    """How to run this Python's own pip: ``pip`` when that is the one on PATH (a venv that
    is active, or no venv), else the venv's pip by its full path (the app was started as
    ``~/.venvs/movinet-pi/bin/movinet-pi``: a bare ``pip`` would install elsewhere)."""
    own = Path(sys.prefix) / "bin" / "pip"
    if sys.prefix == sys.base_prefix or not own.exists():
        return "pip"
    on_path = shutil.which("pip")
    if on_path is not None and Path(on_path).resolve() == own.resolve():
        return "pip"
    return str(own)


def mqtt_install_hint() -> str:
    return f"install the mqtt extra: {pip_command()} install 'movinet-pi[mqtt]'"




def import_paho() -> Any:
    """paho.mqtt.client, or a one-line error saying how to install it."""
    try:
        import paho.mqtt
        import paho.mqtt.client as mqtt_client
    except ImportError:
        raise MovinetPiError(f"--mqtt needs paho-mqtt: {mqtt_install_hint()}") from None
    version = getattr(paho.mqtt, "__version__", "0")
    major = re.match(r"\d+", version)
    if major is None or int(major.group()) < 2:
        raise MovinetPiError(f"--mqtt needs paho-mqtt 2 or newer, found {version}: "
                             f"{mqtt_install_hint()} (or {pip_command()} install -U paho-mqtt)")
    return mqtt_client


def mqtt_client_id() -> str:
    """Unique per run (two runs with one id would throw each other off the broker),
    and readable in the broker's log: ``movinet-pi-<host>-<random>``."""
    host = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname())[:20] or "host"
    return f"movinet-pi-{host}-{secrets.token_hex(3)}"


def set_tls(client: PahoClient, ca_file: str | os.PathLike[str] | None) -> None:
    """TLS with the system's CAs, or with ``ca_file`` only (a private CA, --mqtt-ca);
    the broker's certificate and host name are always checked."""
    if ca_file is not None:
        path = Path(ca_file)
        if not path.is_file():
            raise MovinetPiError(f"--mqtt-ca {path}: no such file")
    try:
        client.tls_set(ca_certs=None if ca_file is None else str(ca_file))
    except (ssl.SSLError, OSError, ValueError) as e:
        where = f"--mqtt-ca {ca_file}" if ca_file is not None else "mqtt TLS"
        raise MovinetPiError(f"{where}: cannot use it as a CA certificate "
                             f"(expected PEM): {one_line(e)}") from None


def new_client(target: MqttTarget, password: str | None,
               ca_file: str | os.PathLike[str] | None, client_id: str | None = None
               ) -> PahoClient:
    """A paho client (MQTT 3.1.1, clean session) logged in and with TLS as ``target``
    says; not connected yet."""
    mqtt = import_paho()
    from paho.mqtt.enums import CallbackAPIVersion

    client: PahoClient = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or mqtt_client_id(), protocol=mqtt.MQTTv311, clean_session=True,
    )
    if target.username is not None:
        client.username_pw_set(target.username, password)
    if target.tls:
        set_tls(client, ca_file)
    return client
