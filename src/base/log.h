/* Logging to stderr, for the daemon side of trainyard. Levels filter at run time
 * (TRAINYARD_LOG=debug|info|warn|error, default warn for `run`, info for `server`). */
#ifndef TY_BASE_LOG_H
#define TY_BASE_LOG_H

typedef enum { TY_LOG_DEBUG, TY_LOG_INFO, TY_LOG_WARN, TY_LOG_ERROR } ty_log_level;

void ty_log_set_level(ty_log_level level);
/* Reads TRAINYARD_LOG if set; otherwise keeps `fallback`. */
void ty_log_init(ty_log_level fallback);
void ty_log(ty_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ty_debug(...) ty_log(TY_LOG_DEBUG, __VA_ARGS__)
#define ty_info(...) ty_log(TY_LOG_INFO, __VA_ARGS__)
#define ty_warn(...) ty_log(TY_LOG_WARN, __VA_ARGS__)
#define ty_errorf(...) ty_log(TY_LOG_ERROR, __VA_ARGS__)

#endif
