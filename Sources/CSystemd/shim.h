// libsystemd's sd-daemon API (sd_notify(3), sd_watchdog_enabled(3)) for Swift.
#ifndef HALLWATCH_CSYSTEMD_SHIM_H
#define HALLWATCH_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#endif
