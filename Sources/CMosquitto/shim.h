// libmosquitto (MQTT 3.1.1 / 5 client) headers for Swift.
#ifndef HALLWATCH_CMOSQUITTO_SHIM_H
#define HALLWATCH_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
