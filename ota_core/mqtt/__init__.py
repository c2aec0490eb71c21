"""The MQTT connection that every protocol adapter of modular-ota drives (over paho-mqtt 2.x)."""

from ota_core.mqtt._connection import MqttConnection, MqttMessage, Subscription, backoff_delay
from ota_core.mqtt._settings import BrokerAddress, MqttSettings, parse_broker_url
from ota_core.mqtt._topics import topic_matches, validate_topic_filter, validate_topic_name

__all__ = [
    "BrokerAddress",
    "MqttConnection",
    "MqttMessage",
    "MqttSettings",
    "Subscription",
    "backoff_delay",
    "parse_broker_url",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]
