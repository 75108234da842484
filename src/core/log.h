/* Leveled, one-line-per-event logging. */
#ifndef TERN_CORE_LOG_H
#define TERN_CORE_LOG_H

enum tern_log_level {
    TERN_LOG_DEBUG = 0,
    TERN_LOG_INFO = 1,
    TERN_LOG_WARN = 2,
    TERN_LOG_ERROR = 3,
};

/** Set the lowest level that is written. Default TERN_LOG_INFO. */
void tern_log_set_level(enum tern_log_level level);
/** Parse "debug", "info", "warn", "error"; -1 if unknown. */
int tern_log_level_parse(const char *s);
/** Is a message at this level written? Use it to skip costly formatting. */
int tern_log_enabled(enum tern_log_level level);

/**
 * Write one line to stderr: timestamp, level, component, message.
 * The message must never contain a password or SASL payload.
 * Thread-safe (one write(2) per line).
 */
void tern_log(enum tern_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define tern_debug(comp, ...) tern_log(TERN_LOG_DEBUG, comp, __VA_ARGS__)
#define tern_info(comp, ...)  tern_log(TERN_LOG_INFO, comp, __VA_ARGS__)
#define tern_warn(comp, ...)  tern_log(TERN_LOG_WARN, comp, __VA_ARGS__)
#define tern_error(comp, ...) tern_log(TERN_LOG_ERROR, comp, __VA_ARGS__)

#endif
