"""Live changes: the event stream (``GET /db/changes``) and the MQTT publisher."""
