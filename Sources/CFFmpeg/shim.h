// Re-exports of FFmpeg macros that Swift cannot import (function-like and compound-literal macros).
#ifndef HALLWATCH_CFFMPEG_SHIM_H
#define HALLWATCH_CFFMPEG_SHIM_H
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/dict.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <errno.h>

static inline int hw_averror(int e) { return AVERROR(e); }
static inline int hw_averror_eof(void) { return AVERROR_EOF; }
static inline int hw_averror_exit(void) { return AVERROR_EXIT; }
static inline int hw_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int64_t hw_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline AVRational hw_time_base_q(void) { return AV_TIME_BASE_Q; }
static inline AVRational hw_rational(int num, int den) { AVRational r = { num, den }; return r; }
/// Writes the message for `errnum` into `buf` (NUL-terminated); returns `buf`.
static inline const char *hw_err2str(int errnum, char *buf, size_t size) {
    if (av_strerror(errnum, buf, size) < 0) { snprintf(buf, size, "error %d", errnum); }
    return buf;
}
#endif
