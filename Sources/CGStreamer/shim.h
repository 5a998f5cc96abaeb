// GStreamer and gst-rtsp-server headers for Swift; macros Swift cannot import are re-exported below.
#ifndef HALLWATCH_CGSTREAMER_SHIM_H
#define HALLWATCH_CGSTREAMER_SHIM_H
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/rtsp-server/rtsp-server.h>

// MARK: g_object_set is variadic, which Swift cannot call: one typed setter per property type.
// The caller must pick the setter whose C type matches the property's GParamSpec type exactly.

static inline void hw_object_set_bool(gpointer object, const char *property, gboolean value) {
    g_object_set(object, property, value, NULL);
}
static inline void hw_object_set_int(gpointer object, const char *property, gint value) {
    g_object_set(object, property, value, NULL);
}
static inline void hw_object_set_uint(gpointer object, const char *property, guint value) {
    g_object_set(object, property, value, NULL);
}
static inline void hw_object_set_uint64(gpointer object, const char *property, guint64 value) {
    g_object_set(object, property, value, NULL);
}
static inline void hw_object_set_string(gpointer object, const char *property, const char *value) {
    g_object_set(object, property, value, NULL);
}

// MARK: g_signal_connect is a macro over g_signal_connect_data with an untyped GCallback; typed wrappers.

typedef void (*hw_media_configure_cb)(GstRTSPMediaFactory *factory, GstRTSPMedia *media, gpointer user_data);
static inline gulong hw_factory_connect_media_configure(GstRTSPMediaFactory *factory, hw_media_configure_cb cb,
                                                        gpointer user_data) {
    return g_signal_connect_data(factory, "media-configure", G_CALLBACK(cb), user_data, NULL, (GConnectFlags)0);
}

typedef void (*hw_media_unprepared_cb)(GstRTSPMedia *media, gpointer user_data);
static inline gulong hw_media_connect_unprepared(GstRTSPMedia *media, hw_media_unprepared_cb cb, gpointer user_data) {
    return g_signal_connect_data(media, "unprepared", G_CALLBACK(cb), user_data, NULL, (GConnectFlags)0);
}

typedef void (*hw_pad_added_cb)(GstElement *element, GstPad *pad, gpointer user_data);
static inline gulong hw_element_connect_pad_added(GstElement *element, hw_pad_added_cb cb, gpointer user_data) {
    return g_signal_connect_data(element, "pad-added", G_CALLBACK(cb), user_data, NULL, (GConnectFlags)0);
}

typedef void (*hw_no_more_pads_cb)(GstElement *element, gpointer user_data);
static inline gulong hw_element_connect_no_more_pads(GstElement *element, hw_no_more_pads_cb cb, gpointer user_data) {
    return g_signal_connect_data(element, "no-more-pads", G_CALLBACK(cb), user_data, NULL, (GConnectFlags)0);
}

// MARK: GstAppSinkCallbacks / GstAppSrcCallbacks have reserved padding that is awkward to spell in Swift.

typedef void (*hw_appsink_eos_cb)(GstAppSink *sink, gpointer user_data);
typedef GstFlowReturn (*hw_appsink_sample_cb)(GstAppSink *sink, gpointer user_data);
static inline void hw_appsink_set_callbacks(GstAppSink *sink, hw_appsink_eos_cb eos, hw_appsink_sample_cb new_sample,
                                            gpointer user_data, GDestroyNotify notify) {
    GstAppSinkCallbacks callbacks = {0};
    callbacks.eos = eos;
    callbacks.new_sample = new_sample;
    gst_app_sink_set_callbacks(sink, &callbacks, user_data, notify);
}

typedef void (*hw_appsrc_need_data_cb)(GstAppSrc *src, guint length, gpointer user_data);
static inline void hw_appsrc_set_callbacks(GstAppSrc *src, hw_appsrc_need_data_cb need_data, gpointer user_data,
                                           GDestroyNotify notify) {
    GstAppSrcCallbacks callbacks = {0};
    callbacks.need_data = need_data;
    gst_app_src_set_callbacks(src, &callbacks, user_data, notify);
}

// MARK: constants defined as macros

/// GST_CLOCK_TIME_NONE: an invalid/unknown GstClockTime.
static inline GstClockTime hw_clock_time_none(void) { return GST_CLOCK_TIME_NONE; }

#endif
