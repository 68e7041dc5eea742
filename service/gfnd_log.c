/*
 * gfnd_log.c - levelled log lines on stderr (journald adds its own time
 * under systemd; the UTC stamp is for runs by hand).
 */
#include "gfnd.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

atomic_int gfnd_log_level = GFND_LOG_INFO;

void gfnd_log(int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > atomic_load(&gfnd_log_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	/* One fprintf per part; stderr is unbuffered, so build one line. */
	char line[1024];
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ gfnd %s: %s\n", stamp, ts.tv_nsec / 1000000,
	        names[level], line);
}
