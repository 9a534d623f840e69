"""edge-agent: poll industrial equipment, buffer every reading durably, publish over MQTT."""

__version__ = "0.1.0"
