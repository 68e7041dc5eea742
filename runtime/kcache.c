/*
 * kcache.c - the compiled-kernel cache: an LRU in memory over one file per
 * key on disk. See kcache.h for the contract.
 *
 * Disk entry format (all integers little-endian), HDR_SIZE bytes of header
 * then the payload:
 *
 *   0  magic "GFNKBIN\0"        8 bytes
 *   8  format version (1)       u32
 *  12  header size (48)         u32
 *  16  key.lo, key.hi           u64, u64
 *  32  payload length           u64
 *  40  XXH3-64 of the payload   u64
 *
 * The file size must be exactly header + length. Files are never changed
 * in place (written under a temporary name, then renamed), so a file a
 * reader has opened stays whole; anything else it finds is damage.
 */
#include "runtime/kcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "runtime/util.h"

#define HDR_SIZE 48
#define FORMAT_VERSION 1
static const char magic[8] = "GFNKBIN"; /* with its NUL: 8 bytes */
static const char key_domain[] = "gfn-kcache-key-1";
#define TMP_PREFIX ".tmp-"
#define TMP_STALE_S 3600  /* older temp files are leftovers of a crash */
#define LOG_CORRUPT_MAX 8 /* corrupt files logged at warn, then at debug */
#define NBUCKETS_MIN 64

/* Numbers the temp files of this process. */
static _Atomic uint64_t tmp_seq;

struct entry {
	struct entry *hnext;  /* next in its hash bucket */
	struct entry *prev;   /* LRU neighbour, more recently used */
	struct entry *next;   /* LRU neighbour, less recently used */
	gfn_kkey key;         /* content key */
	size_t len;           /* payload bytes */
	unsigned char data[]; /* payload */
};

struct gfn_kcache {
	pthread_mutex_t lock;         /* guards the memory level below */
	struct entry **buckets;       /* hash table of entries, by key.lo */
	size_t nbuckets;              /* power of two */
	size_t nentries;              /* entries in memory */
	size_t bytes;                 /* payloads + entry headers in memory */
	_Atomic size_t limit;         /* most bytes kept in memory; atomic
	                                 so mem_put can look before locking */
	struct entry *head;           /* most recently used */
	struct entry *tail;           /* least recently used: evicted first */
	int dirfd;                    /* disk directory, -1: memory only */
	char *dir;                    /* its path (for messages), NULL: none */
	_Atomic uint64_t mem_hits;    /* see gfn_kcache_stats */
	_Atomic uint64_t disk_hits;   /* see gfn_kcache_stats */
	_Atomic uint64_t misses;      /* see gfn_kcache_stats */
	_Atomic uint64_t corrupt;     /* see gfn_kcache_stats */
	_Atomic uint64_t stores;      /* see gfn_kcache_stats */
	_Atomic uint64_t disk_writes; /* see gfn_kcache_stats */
	_Atomic uint64_t disk_errors; /* see gfn_kcache_stats */
	_Atomic uint64_t evictions;   /* see gfn_kcache_stats */
	uint64_t tmp_salt;            /* random: temp names of processes
	                                 (pid namespaces) cannot collide */
};

/* ---- little-endian fields ------------------------------------------------ */

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- keys ---------------------------------------------------------------- */

/* Length first, so ("ab","c") and ("a","bc") hash different bytes. */
static void key_field(XXH3_state_t *st, const char *s, size_t n)
{
	unsigned char le[8];

	put_le(le, n, 8);
	XXH3_128bits_update(st, le, sizeof le);
	if (n)
		XXH3_128bits_update(st, s, n);
}

static size_t str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

gfn_kkey gfn_kcache_key(const char *backend, const char *device,
                        const char *driver, const char *source, size_t len,
                        const char *options)
{
	XXH3_state_t st;
	XXH128_hash_t h;

	XXH3_INITSTATE(&st);
	XXH3_128bits_reset(&st);
	XXH3_128bits_update(&st, key_domain, sizeof key_domain - 1);
	key_field(&st, backend, str_len(backend));
	key_field(&st, device, str_len(device));
	key_field(&st, driver, str_len(driver));
	key_field(&st, source, source ? len : 0);
	key_field(&st, options, str_len(options));
	h = XXH3_128bits_digest(&st);
	return (gfn_kkey){.lo = h.low64, .hi = h.high64};
}

void gfn_kcache_file_name(gfn_kkey key, char *buf, size_t cap)
{
	snprintf(buf, cap, "%016llx%016llx.gfnk", (unsigned long long)key.hi,
	         (unsigned long long)key.lo);
}

/* ---- memory level (lock held in every mem_ function) --------------------- */

static size_t entry_cost(size_t len)
{
	return sizeof(struct entry) + len;
}

static struct entry **mem_slot(gfn_kcache *kc, gfn_kkey key)
{
	struct entry **pp = &kc->buckets[key.lo & (kc->nbuckets - 1)];

	while (*pp && !gfn_kkey_equal((*pp)->key, key))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(gfn_kcache *kc, struct entry *en)
{
	if (en->prev)
		en->prev->next = en->next;
	else
		kc->head = en->next;
	if (en->next)
		en->next->prev = en->prev;
	else
		kc->tail = en->prev;
	en->prev = en->next = NULL;
}

static void lru_push_head(gfn_kcache *kc, struct entry *en)
{
	en->prev = NULL;
	en->next = kc->head;
	if (kc->head)
		kc->head->prev = en;
	kc->head = en;
	if (!kc->tail)
		kc->tail = en;
}

/* Take en out of the table and the list, and free it. */
static void mem_drop(gfn_kcache *kc, struct entry *en)
{
	struct entry **pp = mem_slot(kc, en->key);

	*pp = en->hnext;
	lru_unlink(kc, en);
	kc->nentries--;
	kc->bytes -= entry_cost(en->len);
	free(en);
}

static void mem_evict_to_limit(gfn_kcache *kc)
{
	while (kc->tail && kc->bytes > atomic_load(&kc->limit)) {
		mem_drop(kc, kc->tail);
		atomic_fetch_add_explicit(&kc->evictions, 1,
		                          memory_order_relaxed);
	}
}

/* Double the table when it is fuller than one entry per bucket. A failed
   allocation only leaves chains longer. */
static void mem_grow(gfn_kcache *kc)
{
	size_t n = kc->nbuckets * 2;
	struct entry **b;

	if (kc->nentries <= kc->nbuckets)
		return;
	b = calloc(n, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i < kc->nbuckets; i++) {
		struct entry *en = kc->buckets[i], *next;

		for (; en; en = next) {
			next = en->hnext;
			en->hnext = b[en->key.lo & (n - 1)];
			b[en->key.lo & (n - 1)] = en;
		}
	}
	free(kc->buckets);
	kc->buckets = b;
	kc->nbuckets = n;
}

/* Insert a copy of bin, replacing any entry of the same key. */
static void mem_put(gfn_kcache *kc, gfn_kkey key, const void *bin, size_t len)
{
	struct entry *en = NULL, **pp;

	/* Copy before taking the lock: binaries can be megabytes. */
	if (entry_cost(len) <= atomic_load(&kc->limit) &&
	    (en = malloc(entry_cost(len)))) {
		en->key = key;
		en->len = len;
		memcpy(en->data, bin, len);
	}
	pthread_mutex_lock(&kc->lock);
	pp = mem_slot(kc, key);
	if (*pp)
		mem_drop(kc, *pp);
	if (en && entry_cost(len) <= atomic_load(&kc->limit)) {
		en->hnext = NULL;
		*mem_slot(kc, key) = en;
		lru_push_head(kc, en);
		kc->nentries++;
		kc->bytes += entry_cost(len);
		en = NULL;
		mem_evict_to_limit(kc);
		mem_grow(kc);
	}
	pthread_mutex_unlock(&kc->lock);
	free(en); /* the limit shrank meanwhile */
}

/* A malloc'd copy of key's payload; GFN_ENOENT when not in memory. */
static gfn_status mem_get(gfn_kcache *kc, gfn_kkey key, void **bin, size_t *len)
{
	gfn_status s = GFN_ENOENT;
	struct entry *en;

	pthread_mutex_lock(&kc->lock);
	en = *mem_slot(kc, key);
	if (en) {
		/* Copied under the lock; gets are rare (one per kernel and
		   device at registration), so this does not contend. */
		lru_unlink(kc, en);
		lru_push_head(kc, en);
		*bin = malloc(en->len);
		*len = en->len;
		s = *bin ? GFN_OK : GFN_ENOMEM;
		if (*bin)
			memcpy(*bin, en->data, en->len);
	}
	pthread_mutex_unlock(&kc->lock);
	return s;
}

/* ---- disk: reading ------------------------------------------------------- */

/* Read exactly n bytes at off; 0 on success, -1 on error or short file. */
static int pread_full(int fd, void *buf, size_t n, off_t off)
{
	unsigned char *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

/* Why the header h does not describe a valid entry of key in a file of
   fsize bytes, or NULL when it does (then *len is the payload size). */
static const char *hdr_check(const unsigned char *h, gfn_kkey key, off_t fsize,
                             size_t *len)
{
	uint64_t n = get_le(h + 32, 8);

	if (memcmp(h, magic, sizeof magic))
		return "bad magic";
	if (get_le(h + 8, 4) != FORMAT_VERSION || get_le(h + 12, 4) != HDR_SIZE)
		return "unknown format version";
	if (get_le(h + 16, 8) != key.lo || get_le(h + 24, 8) != key.hi)
		return "header holds another key";
	if (n == 0 || n > GFN_KCACHE_MAX_ENTRY)
		return "bad payload length";
	if ((uint64_t)fsize != HDR_SIZE + n)
		return "file size does not match the header";
	*len = (size_t)n;
	return NULL;
}

/*
 * Read and check the entry open on fd. GFN_OK with *bin malloc'd and *len
 * its size; GFN_ENOENT with *why when the file is damaged; GFN_ENOMEM with
 * *len the size wanted.
 */
static gfn_status read_entry(int fd, gfn_kkey key, void **bin, size_t *len,
                             const char **why)
{
	unsigned char h[HDR_SIZE];
	struct stat st;
	size_t n = 0;
	void *p;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		*why = "not a regular file";
	else if (st.st_size < HDR_SIZE || pread_full(fd, h, HDR_SIZE, 0))
		*why = "shorter than its header";
	else
		*why = hdr_check(h, key, st.st_size, &n);
	if (*why)
		return GFN_ENOENT;
	*len = n;
	if (!(p = malloc(n)))
		return GFN_ENOMEM;
	if (pread_full(fd, p, n, HDR_SIZE))
		*why = "payload unreadable or short";
	else if (XXH3_64bits(p, n) != get_le(h + 40, 8))
		*why = "payload checksum mismatch";
	if (*why) {
		free(p);
		*len = 0;
		return GFN_ENOENT;
	}
	*bin = p;
	return GFN_OK;
}

/*
 * Remove the damaged file name, but only if it is still the file we read
 * (fd; -1 when it could not be opened): another process may have renamed a
 * good entry over it meanwhile. The check and the unlink are not atomic;
 * losing that race costs a rebuild, never a wrong binary.
 */
static void discard(gfn_kcache *kc, const char *name, int fd, const char *why)
{
	struct stat a, b;
	uint64_t n;

	if (fstatat(kc->dirfd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISDIR(a.st_mode) &&
	    (fd < 0 || (fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
	                a.st_ino == b.st_ino)))
		unlinkat(kc->dirfd, name, 0);
	n = atomic_fetch_add_explicit(&kc->corrupt, 1, memory_order_relaxed);
	/* A directory full of rot must not flood the log. */
	gfn__log(n < LOG_CORRUPT_MAX ? GFN_LOG_WARN : GFN_LOG_DEBUG,
	         "kernel cache: removed damaged entry %s/%s: %s%s", kc->dir,
	         name, why,
	         n + 1 == LOG_CORRUPT_MAX ? " (further ones logged at debug)"
	                                  : "");
}

static gfn_status disk_get(gfn_kcache *kc, gfn_kkey key, void **bin,
                           size_t *len)
{
	char name[GFN_KCACHE_NAME_MAX];
	const char *why = NULL;
	gfn_status s;
	int fd;

	gfn_kcache_file_name(key, name, sizeof name);
	/* NONBLOCK: a FIFO planted under the name must not hang us. */
	fd = openat(kc->dirfd, name,
	            O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP) {
		discard(kc, name, -1, "a symbolic link");
		return GFN_ENOENT;
	}
	if (fd < 0) {
		if (errno != ENOENT)
			atomic_fetch_add_explicit(&kc->disk_errors, 1,
			                          memory_order_relaxed);
		return GFN_ENOENT;
	}
	s = read_entry(fd, key, bin, len, &why);
	if (s == GFN_ENOENT)
		discard(kc, name, fd, why);
	close(fd);
	return s;
}

/* ---- disk: writing ------------------------------------------------------- */

static int write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void write_failed(gfn_kcache *kc, const char *what, int err)
{
	uint64_t n = atomic_fetch_add_explicit(&kc->disk_errors, 1,
	                                       memory_order_relaxed);

	gfn__log(n == 0 ? GFN_LOG_WARN : GFN_LOG_DEBUG,
	         "kernel cache: cannot %s in %s: %s; the entry stays in "
	         "memory only",
	         what, kc->dir, strerror(err));
}

/* Header, payload, fsync into the open temp file fd; 0 or an errno. */
static int write_entry(int fd, gfn_kkey key, const void *bin, size_t len)
{
	unsigned char h[HDR_SIZE] = {0};

	memcpy(h, magic, sizeof magic);
	put_le(h + 8, FORMAT_VERSION, 4);
	put_le(h + 12, HDR_SIZE, 4);
	put_le(h + 16, key.lo, 8);
	put_le(h + 24, key.hi, 8);
	put_le(h + 32, len, 8);
	put_le(h + 40, XXH3_64bits(bin, len), 8);
	if (write_full(fd, h, sizeof h) || write_full(fd, bin, len) ||
	    fsync(fd))
		return errno ? errno : EIO;
	return 0;
}

/*
 * Write to a unique temporary name in the same directory, fsync, rename
 * over the real name: readers see the old file or the new, never a part.
 * The directory itself is not fsync'ed: after a crash the rename may be
 * lost, which is a miss, not damage.
 */
static void disk_put(gfn_kcache *kc, gfn_kkey key, const void *bin, size_t len)
{
	char name[GFN_KCACHE_NAME_MAX], tmp[128];
	int fd, err;

	gfn_kcache_file_name(key, name, sizeof name);
	/* Unique among instances, threads and processes sharing the dir. */
	snprintf(tmp, sizeof tmp, TMP_PREFIX "%s-%ld-%016llx-%llu", name,
	         (long)getpid(), (unsigned long long)kc->tmp_salt,
	         (unsigned long long)atomic_fetch_add(&tmp_seq, 1));
	fd = openat(kc->dirfd, tmp,
	            O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		write_failed(kc, "create a file", errno);
		return;
	}
	errno = 0;
	err = write_entry(fd, key, bin, len);
	if (close(fd) && !err)
		err = errno;
	if (!err && renameat(kc->dirfd, tmp, kc->dirfd, name))
		err = errno;
	if (err) {
		unlinkat(kc->dirfd, tmp, 0);
		write_failed(kc, "write an entry", err);
		return;
	}
	atomic_fetch_add_explicit(&kc->disk_writes, 1, memory_order_relaxed);
}

/* ---- disk: the directory ------------------------------------------------- */

/* mkdir -p with mode 0700 for every directory it creates. */
static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(path, 0700);
		*p = '/';
		if (r && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

/* The default directory, malloc'd; NULL with *why when there is none. */
static char *default_dir(const char **why)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	const char *base, *sub;
	char *p;

	/* The XDG spec says a relative value is to be ignored. */
	if (xdg && xdg[0] == '/') {
		base = xdg;
		sub = "gfn/kcache";
	} else if (home && home[0] == '/') {
		base = home;
		sub = ".cache/gfn/kcache";
	} else {
		*why = "neither $XDG_CACHE_HOME nor $HOME is an absolute path";
		return NULL;
	}
	if (asprintf(&p, "%s/%s", base, sub) < 0) {
		*why = "out of memory";
		return NULL;
	}
	return p;
}

/*
 * Binaries found here run inside this process: refuse a directory that
 * someone else could write to.
 */
static const char *dir_check(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		return strerror(errno);
	if (st.st_uid != geteuid())
		return "owned by another user";
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return "writable by group or others";
	if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS))
		return "not writable";
	return NULL;
}

/* Remove temp files that a crashed writer left behind long ago. */
static void clean_stale_tmp(gfn_kcache *kc)
{
	int fd = dup(kc->dirfd);
	time_t now = time(NULL);
	struct dirent *d;
	struct stat st;
	DIR *dp;

	if (fd < 0 || !(dp = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) ||
		    fstatat(kc->dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime < TMP_STALE_S)
			continue;
		unlinkat(kc->dirfd, d->d_name, 0);
	}
	closedir(dp);
}

/* Set up the disk level in dir (NULL: default), or log why not. */
static void disk_open(gfn_kcache *kc, const char *dir)
{
	const char *why = NULL;
	char *path = dir ? strdup(dir) : default_dir(&why);
	int fd = -1;

	if (!path && !why)
		why = "out of memory";
	else if (path && mkdir_p(path))
		why = strerror(errno);
	else if (path &&
	         (fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		why = strerror(errno);
	else if (path)
		why = dir_check(fd);
	if (why) {
		gfn__log(GFN_LOG_WARN,
		         "kernel cache: cannot use directory %s: %s; caching "
		         "compiled kernels in memory only",
		         path ? path : "(default)", why);
		if (fd >= 0)
			close(fd);
		free(path);
		return;
	}
	kc->dirfd = fd;
	kc->dir = path;
	kc->tmp_salt = gfn__random_seed();
	clean_stale_tmp(kc);
	gfn__log(GFN_LOG_DEBUG, "kernel cache: directory %s", path);
}

/* ---- public calls -------------------------------------------------------- */

gfn_status gfn_kcache_open(const char *dir, int use_disk, gfn_kcache **out)
{
	gfn_kcache *kc;

	if (!out)
		return gfn__fail(GFN_EINVAL, "kcache_open: out is required");
	*out = NULL;
	kc = calloc(1, sizeof *kc);
	if (!kc)
		return gfn__fail(GFN_ENOMEM, "kcache_open: out of memory");
	kc->nbuckets = NBUCKETS_MIN;
	kc->buckets = calloc(kc->nbuckets, sizeof *kc->buckets);
	if (!kc->buckets || pthread_mutex_init(&kc->lock, NULL)) {
		free(kc->buckets);
		free(kc);
		return gfn__fail(GFN_ENOMEM, "kcache_open: out of memory");
	}
	atomic_init(&kc->limit, GFN_KCACHE_MEM_LIMIT_DEFAULT);
	kc->dirfd = -1;
	if (use_disk)
		disk_open(kc, dir);
	*out = kc;
	return GFN_OK;
}

void gfn_kcache_close(gfn_kcache *kc)
{
	if (!kc)
		return;
	while (kc->head)
		mem_drop(kc, kc->head);
	if (kc->dirfd >= 0)
		close(kc->dirfd);
	pthread_mutex_destroy(&kc->lock);
	free(kc->buckets);
	free(kc->dir);
	free(kc);
}

gfn_status gfn_kcache_get(gfn_kcache *kc, gfn_kkey key, void **bin, size_t *len)
{
	gfn_status s;

	if (!kc || !bin || !len)
		return gfn__fail(GFN_EINVAL,
		                 "kcache_get: kc, bin, len required");
	*bin = NULL;
	*len = 0;
	s = mem_get(kc, key, bin, len);
	if (s == GFN_OK)
		atomic_fetch_add_explicit(&kc->mem_hits, 1,
		                          memory_order_relaxed);
	if (s == GFN_ENOENT && kc->dirfd >= 0) {
		s = disk_get(kc, key, bin, len);
		if (s == GFN_OK) {
			atomic_fetch_add_explicit(&kc->disk_hits, 1,
			                          memory_order_relaxed);
			mem_put(kc, key, *bin, *len);
		}
	}
	if (s == GFN_ENOMEM) {
		s = gfn__fail(s, "kcache_get: no memory for %zu bytes", *len);
		*len = 0;
		return s;
	}
	if (s == GFN_ENOENT) {
		atomic_fetch_add_explicit(&kc->misses, 1, memory_order_relaxed);
		return gfn__fail(s, "kernel %016llx%016llx is not cached",
		                 (unsigned long long)key.hi,
		                 (unsigned long long)key.lo);
	}
	return s;
}

gfn_status gfn_kcache_put(gfn_kcache *kc, gfn_kkey key, const void *bin,
                          size_t len)
{
	if (!kc || !bin)
		return gfn__fail(GFN_EINVAL, "kcache_put: kc and bin required");
	if (len == 0 || len > GFN_KCACHE_MAX_ENTRY)
		return gfn__fail(GFN_EINVAL,
		                 "kcache_put: %zu bytes is not 1..%zu", len,
		                 GFN_KCACHE_MAX_ENTRY);
	mem_put(kc, key, bin, len);
	if (kc->dirfd >= 0)
		disk_put(kc, key, bin, len);
	atomic_fetch_add_explicit(&kc->stores, 1, memory_order_relaxed);
	return GFN_OK;
}

void gfn_kcache_set_mem_limit(gfn_kcache *kc, size_t bytes)
{
	if (!kc)
		return;
	pthread_mutex_lock(&kc->lock);
	atomic_store(&kc->limit, bytes);
	mem_evict_to_limit(kc);
	pthread_mutex_unlock(&kc->lock);
}

const char *gfn_kcache_dir(const gfn_kcache *kc)
{
	return kc && kc->dirfd >= 0 ? kc->dir : NULL;
}

static uint64_t load(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void gfn_kcache_get_stats(gfn_kcache *kc, gfn_kcache_stats *out)
{
	if (!kc || !out)
		return;
	out->mem_hits = load(&kc->mem_hits);
	out->disk_hits = load(&kc->disk_hits);
	out->misses = load(&kc->misses);
	out->corrupt = load(&kc->corrupt);
	out->stores = load(&kc->stores);
	out->disk_writes = load(&kc->disk_writes);
	out->disk_errors = load(&kc->disk_errors);
	out->evictions = load(&kc->evictions);
	pthread_mutex_lock(&kc->lock);
	out->mem_entries = kc->nentries;
	out->mem_bytes = kc->bytes;
	pthread_mutex_unlock(&kc->lock);
	out->disk = kc->dirfd >= 0;
}
