"""OPC UA: convert.py (DataValues -> values, pure), security.py (this client's certificate,
which server certificates to trust), driver.py (the session: connect, poll, close),
browse.py (`edge-agent browse`), certs.py (`edge-agent certs opcua`).

Nothing is imported here: certs.py needs only `cryptography`, and a gateway without OPC UA
devices never loads asyncua (the registry imports driver.py when a config names opcua).
"""
