"""Protocol drivers. Each knows its protocol and nothing of MQTT, buffers or scheduling."""
