// libudev (Debian libudev-dev): the provisioner's monitor of USB block devices and its scan at start.
#ifndef HALLWATCH_CUDEV_SHIM_H
#define HALLWATCH_CUDEV_SHIM_H
#include <libudev.h>
#endif
