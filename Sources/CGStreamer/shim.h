// GStreamer and gst-rtsp-server headers for Swift; macros Swift cannot import are re-exported below.
#ifndef HALLWATCH_CGSTREAMER_SHIM_H
#define HALLWATCH_CGSTREAMER_SHIM_H
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#endif
