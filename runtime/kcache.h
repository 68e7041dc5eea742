/*
 * kcache.h - the compiled-kernel cache: binaries keyed by content, kept in
 * memory and on disk. Internal: not API.
 *
 * A kernel build (OpenCL program, NVRTC) costs 100 ms to seconds; a process
 * that finds the binary here skips it. The key is a 128-bit XXH3 hash of
 * everything that decides the binary: backend, device name, driver version,
 * source and build options (gfn_kcache_key). The cache is two levels:
 *
 *  - memory: a bounded LRU (by bytes, default 64 MiB) shared by the threads
 *    of one process;
 *  - disk: one file per key in a directory (default $XDG_CACHE_HOME/gfn/
 *    kcache, else $HOME/.cache/gfn/kcache, created 0700), shared by every
 *    process of the user, so a new process with a warm disk does not build.
 *
 * A disk entry is never trusted: its header (magic, format version, the
 * whole key, payload length, XXH3-64 of the payload) is checked against the
 * file before the payload is handed out. A file that fails any check is
 * removed, counted (stats.corrupt) and reported as a miss, so the caller
 * rebuilds and puts a good one back. Files are written to a temporary name
 * in the same directory, fsync'ed and renamed into place, so a reader in
 * any process sees a whole old file, a whole new file or none: never a torn
 * one. The cache is best effort: a disk that cannot be used (no directory,
 * not writable, full) leaves a working memory-only cache and a log line,
 * never a failure of the caller.
 *
 * All calls are thread-safe. A kcache is not inherited across fork(): a
 * child opens its own on the same directory.
 */
#ifndef GFN_RUNTIME_KCACHE_H
#define GFN_RUNTIME_KCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

typedef struct gfn_kcache gfn_kcache;

/* A content key: 128 bits of XXH3. Compare with gfn_kkey_equal. */
typedef struct gfn_kkey {
	uint64_t lo; /* low half of the XXH3-128 hash */
	uint64_t hi; /* high half */
} gfn_kkey;

static inline int gfn_kkey_equal(gfn_kkey a, gfn_kkey b)
{
	return a.lo == b.lo && a.hi == b.hi;
}

/* Counters since open; a snapshot (each read atomically, not together). */
typedef struct gfn_kcache_stats {
	uint64_t mem_hits;    /* gets answered from memory */
	uint64_t disk_hits;   /* gets answered from a valid disk file */
	uint64_t misses;      /* gets that found nothing usable */
	uint64_t corrupt;     /* disk files that failed a check (removed) */
	uint64_t stores;      /* successful puts */
	uint64_t disk_writes; /* files written and renamed into place */
	uint64_t disk_errors; /* disk reads/writes that failed (I/O, space) */
	uint64_t evictions;   /* memory entries dropped to stay in the limit */
	uint64_t mem_entries; /* entries in memory now */
	uint64_t mem_bytes;   /* bytes held in memory now: payloads plus
	                         a small header per entry */
	int disk;             /* 1: disk level in use; 0: memory only */
} gfn_kcache_stats;

#define GFN_KCACHE_MEM_LIMIT_DEFAULT ((size_t)64 << 20)
/* The largest payload accepted; a header claiming more is corrupt. */
#define GFN_KCACHE_MAX_ENTRY ((size_t)1 << 30)

/*
 * Open a cache. dir: the disk directory, or NULL for the default (see
 * above); it and missing parents are created 0700. use_disk 0: memory only
 * and dir is ignored. When the directory cannot be used (cannot be made,
 * is not a directory, is not writable, or is owned by another user or
 * writable by group/others, who could plant a binary that this process
 * would then run), the cache works memory-only and says why once in the
 * log (warn); it is not an error. On GFN_OK the caller owns *out (give it
 * back with gfn_kcache_close). GFN_ENOMEM, *out NULL, only when the cache
 * itself cannot be allocated.
 */
gfn_status gfn_kcache_open(const char *dir, int use_disk, gfn_kcache **out);

/* Free the memory level; disk files stay. NULL is a no-op. No other call
   on kc may be running or follow. */
void gfn_kcache_close(gfn_kcache *kc);

/*
 * The key of a kernel binary. Each string is hashed with its length, in
 * this order, so no two different field lists give the same input bytes;
 * NULL counts as "". source is len bytes (it need not be NUL-terminated);
 * the others are NUL-terminated. Pure: no cache needed.
 */
gfn_kkey gfn_kcache_key(const char *backend, const char *device,
                        const char *driver, const char *source, size_t len,
                        const char *options);

/*
 * Look key up in memory, then on disk (a disk hit is kept in memory too).
 * On GFN_OK *bin is a malloc'd copy of the payload that the caller owns
 * (free() it) and *len its size (> 0). GFN_ENOENT, *bin NULL, on a miss,
 * including a disk file found corrupt (it was removed). GFN_ENOMEM when the
 * copy cannot be allocated. Disk I/O happens without the cache's lock.
 */
gfn_status gfn_kcache_get(gfn_kcache *kc, gfn_kkey key, void **bin,
                          size_t *len);

/*
 * Store len (1 .. GFN_KCACHE_MAX_ENTRY) bytes of bin under key, in memory
 * (unless larger than the memory limit) and on disk; an entry already there
 * is replaced. bin is only read during the call. Best effort: GFN_OK once
 * the arguments are valid, even when a level could not store it (that is
 * counted in stats and logged); GFN_EINVAL for a NULL or bad-sized bin.
 */
gfn_status gfn_kcache_put(gfn_kcache *kc, gfn_kkey key, const void *bin,
                          size_t len);

/* Change the memory limit (bytes; 0 keeps nothing in memory); evicts
   least recently used entries down to it at once. */
void gfn_kcache_set_mem_limit(gfn_kcache *kc, size_t bytes);

/* The disk directory in use, or NULL when memory-only. Owned by kc. */
const char *gfn_kcache_dir(const gfn_kcache *kc);

/* Snapshot of the counters into *out. */
void gfn_kcache_get_stats(gfn_kcache *kc, gfn_kcache_stats *out);

/*
 * The file name (no directory) of key's disk entry into buf (at least
 * GFN_KCACHE_NAME_MAX bytes): 32 hex digits, hi then lo, and ".gfnk".
 * For tests and tools that inspect the directory.
 */
#define GFN_KCACHE_NAME_MAX 48
void gfn_kcache_file_name(gfn_kkey key, char *buf, size_t cap);

#endif /* GFN_RUNTIME_KCACHE_H */
