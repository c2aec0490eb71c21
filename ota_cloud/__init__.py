"""ota_cloud: local stand-ins of the clouds, for tests, demos and fleet simulation.

The AWS IoT Jobs and MQTT file-stream services, Azure IoT Hub twins and the Device Update service side,
a managed mosquitto broker, a loopback HTTP file server with Range support and a test PKI. Written from
the protocol descriptions, independently of the device-side packages.
"""

__all__: list[str] = []
