/*
 * test_kcache.c - the compiled-kernel cache (runtime/kcache.h): memory and
 * disk levels, sharing between instances and processes, damage detection,
 * atomic replacement under concurrent writers, a disk that cannot be used,
 * and random bytes fed in as cache files.
 *
 * Every case works in its own fresh directory under $TMPDIR (or /tmp).
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/kcache.h"

/* ---------------------------------------------------------------- helpers */

static char *tmpdir_make(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	ASSERT(asprintf(&p, "%s/gfn-kcache-XXXXXX", base) > 0);
	ASSERT_NOT_NULL(mkdtemp(p));
	return p;
}

static int rm_one(const char *path, const struct stat *st, int type,
                  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void tmpdir_remove(char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static gfn_kkey key_n(int i)
{
	char src[64];
	int n = snprintf(src, sizeof src, "__kernel void k%d(void) {}", i);

	return gfn_kcache_key("test", "dev0", "drv 1.0", src, (size_t)n, "-O2");
}

/* The path of key's entry in kc's directory. */
static void entry_path(gfn_kcache *kc, gfn_kkey key, char *buf, size_t cap)
{
	char name[GFN_KCACHE_NAME_MAX];

	ASSERT_NOT_NULL(gfn_kcache_dir(kc));
	gfn_kcache_file_name(key, name, sizeof name);
	snprintf(buf, cap, "%s/%s", gfn_kcache_dir(kc), name);
}

static int file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static unsigned char *file_read(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *p;
	int fd = open(path, O_RDONLY);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	p = malloc(*len + 1);
	ASSERT_NOT_NULL(p);
	ASSERT_EQ(read(fd, p, *len), (ssize_t)*len);
	close(fd);
	return p;
}

static void file_write(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static gfn_kcache *open_at(const char *dir)
{
	gfn_kcache *kc = NULL;

	ASSERT_OK(gfn_kcache_open(dir, 1, &kc));
	ASSERT_NOT_NULL(kc);
	return kc;
}

static gfn_kcache_stats stats_of(gfn_kcache *kc)
{
	gfn_kcache_stats st;

	memset(&st, 0xa5, sizeof st);
	gfn_kcache_get_stats(kc, &st);
	return st;
}

/* get must hit with exactly want[0 .. len-1]. */
static void expect_hit(gfn_kcache *kc, gfn_kkey key, const void *want,
                       size_t len)
{
	void *bin = NULL;
	size_t n = 0;

	ASSERT_OK(gfn_kcache_get(kc, key, &bin, &n));
	ASSERT_NOT_NULL(bin);
	ASSERT_EQ(n, len);
	ASSERT_EQ(memcmp(bin, want, len), 0);
	free(bin);
}

static void expect_miss(gfn_kcache *kc, gfn_kkey key)
{
	void *bin = (void *)1;
	size_t n = 1;

	ASSERT_FAILS(gfn_kcache_get(kc, key, &bin, &n), GFN_ENOENT);
	ASSERT_NULL(bin);
	ASSERT_EQ(n, 0);
}

/*
 * A self-describing payload: writer and sequence number up front, a length
 * that depends on them, and bytes that depend on all three, so a reader
 * can tell a whole payload from a mix of two.
 */
static unsigned char payload_byte(uint32_t w, uint32_t seq, size_t i)
{
	return (unsigned char)(w * 131u + seq * 31u + i * 7u + (i >> 8));
}

static size_t payload_len(uint32_t w, uint32_t seq)
{
	return 8 + 100 + (w * 977u + seq * 389u) % 20000u;
}

static unsigned char *payload_make(uint32_t w, uint32_t seq, size_t *len)
{
	unsigned char *p;

	*len = payload_len(w, seq);
	p = malloc(*len);
	ASSERT_NOT_NULL(p);
	memcpy(p, &w, 4);
	memcpy(p + 4, &seq, 4);
	for (size_t i = 8; i < *len; i++)
		p[i] = payload_byte(w, seq, i);
	return p;
}

/* 1 when p is exactly one payload_make() result. */
static int payload_whole(const unsigned char *p, size_t len)
{
	uint32_t w, seq;

	if (len < 8)
		return 0;
	memcpy(&w, p, 4);
	memcpy(&seq, p + 4, 4);
	if (len != payload_len(w, seq))
		return 0;
	for (size_t i = 8; i < len; i++)
		if (p[i] != payload_byte(w, seq, i))
			return 0;
	return 1;
}

/* ------------------------------------------------------------- basic cases */

static void test_roundtrip(void)
{
	char *dir = tmpdir_make(), path[512];
	const char bin[] = "\x7f"
	                   "ELF pretend this is a kernel binary";
	gfn_kcache *kc = open_at(dir);
	gfn_kcache_stats st;
	struct stat sb;

	ASSERT_STR_EQ(gfn_kcache_dir(kc), dir);
	ASSERT_OK(gfn_kcache_put(kc, key_n(1), bin, sizeof bin));
	expect_hit(kc, key_n(1), bin, sizeof bin);
	st = stats_of(kc);
	ASSERT_U64_EQ(st.mem_hits, 1);
	ASSERT_U64_EQ(st.stores, 1);
	ASSERT_U64_EQ(st.disk_writes, 1);
	ASSERT_U64_EQ(st.mem_entries, 1);
	ASSERT_EQ(st.disk, 1);
	/* On disk, private to the user. */
	entry_path(kc, key_n(1), path, sizeof path);
	ASSERT_EQ(stat(path, &sb), 0);
	ASSERT_EQ(sb.st_mode & 0777, 0600);
	/* A put of the same key replaces the entry. */
	ASSERT_OK(gfn_kcache_put(kc, key_n(1), "v2", 2));
	expect_hit(kc, key_n(1), "v2", 2);
	gfn_kcache_close(kc);
	kc = open_at(dir);
	expect_hit(kc, key_n(1), "v2", 2);
	gfn_kcache_close(kc);
	tmpdir_remove(dir);
}

static void test_miss_and_args(void)
{
	gfn_kcache *kc = NULL;
	void *bin;
	size_t n;

	ASSERT_OK(gfn_kcache_open(NULL, 0, &kc));
	ASSERT_NULL(gfn_kcache_dir(kc));
	ASSERT_EQ(stats_of(kc).disk, 0);
	expect_miss(kc, key_n(2));
	ASSERT_U64_EQ(stats_of(kc).misses, 1);
	ASSERT_FAILS(gfn_kcache_put(kc, key_n(2), "x", 0), GFN_EINVAL);
	ASSERT_FAILS(gfn_kcache_put(kc, key_n(2), NULL, 1), GFN_EINVAL);
	ASSERT_FAILS(gfn_kcache_put(NULL, key_n(2), "x", 1), GFN_EINVAL);
	ASSERT_FAILS(gfn_kcache_get(kc, key_n(2), NULL, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_kcache_get(NULL, key_n(2), &bin, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_kcache_open(NULL, 0, NULL), GFN_EINVAL);
	ASSERT_U64_EQ(stats_of(kc).stores, 0);
	gfn_kcache_close(kc);
	gfn_kcache_close(NULL);
}

static void test_key_fields(void)
{
	const char *src = "__kernel void k(void) {}";
	size_t len = strlen(src);
	gfn_kkey k =
	        gfn_kcache_key("opencl", "pthread", "3.1", src, len, "-O2");

	/* Deterministic, and NULL is the same as "". */
	ASSERT(gfn_kkey_equal(k, gfn_kcache_key("opencl", "pthread", "3.1", src,
	                                        len, "-O2")));
	ASSERT(gfn_kkey_equal(gfn_kcache_key("a", NULL, "", src, len, NULL),
	                      gfn_kcache_key("a", "", NULL, src, len, "")));
	/* Every field matters. */
	ASSERT(!gfn_kkey_equal(
	        k, gfn_kcache_key("cuda", "pthread", "3.1", src, len, "-O2")));
	ASSERT(!gfn_kkey_equal(k, gfn_kcache_key("opencl", "pthread2", "3.1",
	                                         src, len, "-O2")));
	ASSERT(!gfn_kkey_equal(k, gfn_kcache_key("opencl", "pthread", "3.2",
	                                         src, len, "-O2")));
	ASSERT(!gfn_kkey_equal(k, gfn_kcache_key("opencl", "pthread", "3.1",
	                                         src, len - 1, "-O2")));
	ASSERT(!gfn_kkey_equal(k, gfn_kcache_key("opencl", "pthread", "3.1",
	                                         src, len, "-O3")));
	ASSERT(!gfn_kkey_equal(
	        k, gfn_kcache_key("opencl", "pthread", "3.1", src, len, NULL)));
	/* Moving bytes from one field to the next changes the key. */
	ASSERT(!gfn_kkey_equal(gfn_kcache_key("ab", "c", "", "", 0, ""),
	                       gfn_kcache_key("a", "bc", "", "", 0, "")));
	ASSERT(!gfn_kkey_equal(gfn_kcache_key("", "", "x", "", 0, ""),
	                       gfn_kcache_key("", "", "", "x", 1, "")));
	/* Both halves are used. */
	ASSERT(k.lo != 0 && k.hi != 0 && k.lo != k.hi);
	ASSERT(!gfn_kkey_equal(key_n(1), key_n(2)));
}

/* A second instance, with the producer gone, reads the disk; a get
   from disk is then served from memory. */
static void test_second_instance(void)
{
	char *dir = tmpdir_make();
	gfn_kcache *a = open_at(dir), *b;
	gfn_kcache_stats st;

	ASSERT_OK(gfn_kcache_put(a, key_n(3), "binary-3", 8));
	gfn_kcache_close(a);
	b = open_at(dir);
	expect_hit(b, key_n(3), "binary-3", 8);
	expect_hit(b, key_n(3), "binary-3", 8);
	expect_miss(b, key_n(4));
	st = stats_of(b);
	ASSERT_U64_EQ(st.disk_hits, 1);
	ASSERT_U64_EQ(st.mem_hits, 1);
	ASSERT_U64_EQ(st.misses, 1);
	ASSERT_U64_EQ(st.corrupt, 0);
	gfn_kcache_close(b);
	tmpdir_remove(dir);
}

/* Run fn(dir) in a child process and check that it exits 0. */
static void in_child(void (*fn)(const char *dir), const char *dir)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		fn(dir);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* In a fresh process: find what the parent put, put something back. */
static void child_reader(const char *dir)
{
	gfn_kcache *kc = open_at(dir);

	expect_hit(kc, key_n(5), "from-parent", 11);
	ASSERT_U64_EQ(stats_of(kc).disk_hits, 1);
	ASSERT_OK(gfn_kcache_put(kc, key_n(6), "from-child", 10));
	gfn_kcache_close(kc);
}

static void test_other_process(void)
{
	char *dir = tmpdir_make();
	gfn_kcache *kc = open_at(dir);

	ASSERT_OK(gfn_kcache_put(kc, key_n(5), "from-parent", 11));
	in_child(child_reader, dir);
	/* The parent's memory level did not have it; the disk does. */
	expect_hit(kc, key_n(6), "from-child", 10);
	ASSERT_U64_EQ(stats_of(kc).disk_hits, 1);
	gfn_kcache_close(kc);
	tmpdir_remove(dir);
}

/* Memory is an LRU bounded in bytes. */
static void test_lru(void)
{
	gfn_kcache *kc = NULL;
	unsigned char buf[1000];
	gfn_kcache_stats st;

	memset(buf, 0x5a, sizeof buf);
	ASSERT_OK(gfn_kcache_open(NULL, 0, &kc));
	gfn_kcache_set_mem_limit(kc, 3500); /* three entries and a bit */
	for (int i = 0; i < 3; i++)
		ASSERT_OK(gfn_kcache_put(kc, key_n(100 + i), buf, sizeof buf));
	expect_hit(kc, key_n(100), buf, sizeof buf); /* now most recent */
	ASSERT_OK(gfn_kcache_put(kc, key_n(103), buf, sizeof buf));
	expect_miss(kc, key_n(101)); /* the least recently used went */
	expect_hit(kc, key_n(100), buf, sizeof buf);
	expect_hit(kc, key_n(102), buf, sizeof buf);
	expect_hit(kc, key_n(103), buf, sizeof buf);
	st = stats_of(kc);
	ASSERT_U64_EQ(st.evictions, 1);
	ASSERT_U64_EQ(st.mem_entries, 3);
	ASSERT_LE(st.mem_bytes, 3500);
	/* Bigger than the limit: not kept at all. */
	gfn_kcache_set_mem_limit(kc, 500);
	ASSERT_U64_EQ(stats_of(kc).mem_entries, 0);
	ASSERT_OK(gfn_kcache_put(kc, key_n(104), buf, sizeof buf));
	expect_miss(kc, key_n(104));
	/* Many entries: the table grows and everything stays findable. */
	gfn_kcache_set_mem_limit(kc, 1 << 20);
	for (int i = 0; i < 1000; i++)
		ASSERT_OK(gfn_kcache_put(kc, key_n(1000 + i), &i, sizeof i));
	for (int i = 0; i < 1000; i++)
		expect_hit(kc, key_n(1000 + i), &i, sizeof i);
	gfn_kcache_close(kc);
}

/* ---------------------------------------------------------------- damage */

typedef void (*damage_fn)(const char *path, const char *other);

static void d_flip_payload(const char *path, const char *other)
{
	size_t len;
	unsigned char *p = file_read(path, &len);

	(void)other;
	p[len - 3] ^= 0x10;
	file_write(path, p, len);
	free(p);
}

static void d_flip_checksum(const char *path, const char *other)
{
	size_t len;
	unsigned char *p = file_read(path, &len);

	(void)other;
	p[44] ^= 0x01; /* inside the header's payload hash */
	file_write(path, p, len);
	free(p);
}

static void d_truncate_half(const char *path, const char *other)
{
	struct stat st;

	(void)other;
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(truncate(path, st.st_size / 2), 0);
}

static void d_truncate_header(const char *path, const char *other)
{
	(void)other;
	ASSERT_EQ(truncate(path, 20), 0);
}

static void d_empty(const char *path, const char *other)
{
	(void)other;
	ASSERT_EQ(truncate(path, 0), 0);
}

static void d_append(const char *path, const char *other)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	(void)other;
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "!", 1), 1);
	close(fd);
}

static void d_magic(const char *path, const char *other)
{
	size_t len;
	unsigned char *p = file_read(path, &len);

	(void)other;
	p[0] = 'X';
	file_write(path, p, len);
	free(p);
}

static void d_version(const char *path, const char *other)
{
	size_t len;
	unsigned char *p = file_read(path, &len);

	(void)other;
	p[8] = 99; /* a format from the future: stale here */
	file_write(path, p, len);
	free(p);
}

/* A whole, valid entry of another key under this key's name. */
static void d_wrong_key(const char *path, const char *other)
{
	size_t len;
	unsigned char *p = file_read(other, &len);

	file_write(path, p, len);
	free(p);
}

static void d_garbage(const char *path, const char *other)
{
	unsigned char junk[300];
	uint64_t r = 12345;

	(void)other;
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)test_rand(&r);
	file_write(path, junk, sizeof junk);
}

static void d_symlink(const char *path, const char *other)
{
	ASSERT_EQ(unlink(path), 0);
	ASSERT_EQ(symlink(other, path), 0); /* a valid file, but not ours */
}

static void d_fifo(const char *path, const char *other)
{
	(void)other;
	ASSERT_EQ(unlink(path), 0);
	ASSERT_EQ(mkfifo(path, 0600), 0); /* opening must not hang */
}

static void d_directory(const char *path, const char *other)
{
	(void)other;
	ASSERT_EQ(unlink(path), 0);
	ASSERT_EQ(mkdir(path, 0700), 0);
}

/* Damage key 7's file, then a fresh instance must see a counted miss,
   remove the file (unless a directory) and take a rebuilt entry. */
static void check_damage(const char *what, damage_fn damage, int removable)
{
	char *dir = tmpdir_make(), path[512], other[512];
	const char bin[] = "a kernel binary of some length, v1";
	gfn_kcache *kc = open_at(dir);
	gfn_kcache_stats st;

	ASSERT_OK(gfn_kcache_put(kc, key_n(7), bin, sizeof bin));
	ASSERT_OK(gfn_kcache_put(kc, key_n(8), bin, sizeof bin));
	entry_path(kc, key_n(7), path, sizeof path);
	entry_path(kc, key_n(8), other, sizeof other);
	gfn_kcache_close(kc);
	damage(path, other);

	kc = open_at(dir);
	expect_miss(kc, key_n(7));
	st = stats_of(kc);
	if (st.corrupt != 1 || st.misses != 1)
		test_fail(__FILE__, __LINE__, "%s: corrupt %llu misses %llu",
		          what, (unsigned long long)st.corrupt,
		          (unsigned long long)st.misses);
	if (removable && file_exists(path))
		test_fail(__FILE__, __LINE__, "%s: file not removed", what);
	if (!removable) {
		ASSERT_EQ(rmdir(path), 0);
	}
	/* The caller rebuilds and puts; the next process finds it. */
	ASSERT_OK(gfn_kcache_put(kc, key_n(7), bin, sizeof bin));
	gfn_kcache_close(kc);
	kc = open_at(dir);
	expect_hit(kc, key_n(7), bin, sizeof bin);
	expect_hit(kc, key_n(8), bin, sizeof bin); /* untouched */
	ASSERT_U64_EQ(stats_of(kc).corrupt, 0);
	gfn_kcache_close(kc);
	tmpdir_remove(dir);
}

static void test_damaged_files(void)
{
	check_damage("payload byte flipped", d_flip_payload, 1);
	check_damage("checksum flipped", d_flip_checksum, 1);
	check_damage("truncated to half", d_truncate_half, 1);
	check_damage("truncated inside the header", d_truncate_header, 1);
	check_damage("empty", d_empty, 1);
	check_damage("a byte appended", d_append, 1);
	check_damage("bad magic", d_magic, 1);
	check_damage("unknown version", d_version, 1);
	check_damage("another key's entry", d_wrong_key, 1);
	check_damage("garbage", d_garbage, 1);
	check_damage("symbolic link", d_symlink, 1);
	check_damage("fifo", d_fifo, 1);
	check_damage("directory", d_directory, 0);
}

/* -------------------------------------------------------------------- fuzz */

/* One random file: garbage, or a valid entry with random damage. */
static size_t fuzz_file(uint64_t *r, const unsigned char *good, size_t glen,
                        unsigned char *buf, size_t cap)
{
	size_t len;

	if (test_rand(r) % 4 == 0) { /* pure garbage, any length */
		len = test_rand(r) % 200;
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)test_rand(r);
		return len;
	}
	memcpy(buf, good, glen);
	len = glen;
	for (int m = 1 + (int)(test_rand(r) % 4); m > 0; m--) {
		size_t at = test_rand(r) % len;

		switch (test_rand(r) % 4) {
		case 0: /* flip a bit */
			buf[at] ^= (unsigned char)(1u << (test_rand(r) % 8));
			break;
		case 1: /* cut */
			len = at;
			break;
		case 2: /* random byte */
			buf[at] = (unsigned char)test_rand(r);
			break;
		default: /* grow */
			while (len < cap && test_rand(r) % 3)
				buf[len++] = (unsigned char)test_rand(r);
		}
		if (len == 0)
			break;
	}
	return len;
}

static void test_fuzz_files(void)
{
	char *dir = tmpdir_make(), path[512];
	size_t iters = test_scaled(2000, 200), glen, len;
	unsigned char *good, buf[512];
	uint64_t r = 0x5eed, corrupt = 0, intact = 0;
	gfn_kcache *kc = open_at(dir);

	ASSERT_OK(gfn_kcache_put(kc, key_n(9), "fuzz target payload", 19));
	entry_path(kc, key_n(9), path, sizeof path);
	good = file_read(path, &glen);
	ASSERT_LE(glen, 100);
	gfn_kcache_set_mem_limit(kc, 0); /* every get reads the file */
	for (size_t i = 0; i < iters; i++) {
		void *bin = NULL;
		size_t n = 0;
		gfn_status s;

		len = fuzz_file(&r, good, glen, buf, sizeof buf);
		file_write(path, buf, len);
		s = gfn_kcache_get(kc, key_n(9), &bin, &n);
		if (len == glen && !memcmp(buf, good, glen)) {
			/* The damage undid itself: must be served. */
			ASSERT_OK(s);
			ASSERT_EQ(n, 19);
			ASSERT_EQ(memcmp(bin, "fuzz target payload", 19), 0);
			free(bin);
			intact++;
			continue;
		}
		ASSERT_STATUS(s, GFN_ENOENT);
		ASSERT_NULL(bin);
		ASSERT(!file_exists(path));
		corrupt++;
	}
	ASSERT_U64_EQ(stats_of(kc).corrupt, corrupt);
	ASSERT_U64_EQ(stats_of(kc).disk_hits, intact);
	printf("# fuzz: %zu files, %llu damaged, %llu intact\n", iters,
	       (unsigned long long)corrupt, (unsigned long long)intact);
	free(good);
	gfn_kcache_close(kc);
	tmpdir_remove(dir);
}

/* ------------------------------------------------------------ concurrency */

#define NKEYS 4

struct hammer {
	const char *dir; /* shared cache directory */
	gfn_kcache *kc;  /* shared instance, or NULL: open a private one */
	uint32_t writer; /* distinct per thread and process */
	size_t iters;    /* puts and gets to do */
	uint64_t torn;   /* gets that returned a mixed payload */
	uint64_t hits;   /* gets that returned something */
};

/* Put and get the same few keys over and over, checking every payload. */
static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	gfn_kcache *kc = h->kc ? h->kc : open_at(h->dir);

	if (!h->kc)
		gfn_kcache_set_mem_limit(kc, 0); /* force the disk path */
	for (uint32_t i = 0; i < h->iters; i++) {
		size_t len, n = 0;
		unsigned char *p = payload_make(h->writer, i, &len);
		void *bin = NULL;
		gfn_status s;

		ASSERT_OK(gfn_kcache_put(kc, key_n((int)(i % NKEYS)), p, len));
		free(p);
		s = gfn_kcache_get(kc, key_n((int)((i + 1) % NKEYS)), &bin, &n);
		if (s == GFN_OK) {
			h->hits++;
			h->torn += !payload_whole(bin, n);
			free(bin);
		} else {
			ASSERT_STATUS(s, GFN_ENOENT); /* not written yet */
		}
	}
	if (!h->kc) {
		ASSERT_U64_EQ(stats_of(kc).corrupt, 0);
		ASSERT_U64_EQ(stats_of(kc).disk_errors, 0);
		gfn_kcache_close(kc);
	}
	return NULL;
}

/* Threads with private instances and threads sharing one, same dir. */
static void hammer_threads(const char *dir, uint32_t writer0, size_t iters)
{
	enum { NT = 4 };
	struct hammer h[NT];
	pthread_t t[NT];
	gfn_kcache *shared = open_at(dir);

	for (int i = 0; i < NT; i++) {
		h[i] = (struct hammer){.dir = dir,
		                       .kc = i < 2 ? shared : NULL,
		                       .writer = writer0 + (uint32_t)i,
		                       .iters = iters};
		ASSERT_EQ(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
		ASSERT_U64_EQ(h[i].torn, 0);
	}
	ASSERT_U64_EQ(stats_of(shared).corrupt, 0);
	gfn_kcache_close(shared);
}

static size_t hammer_iters(void)
{
	return test_scaled(300, 40);
}

static void test_concurrent_threads(void)
{
	char *dir = tmpdir_make();

	hammer_threads(dir, 0, hammer_iters());
	tmpdir_remove(dir);
}

static void child_hammer(const char *dir)
{
	struct hammer h = {.dir = dir,
	                   .writer = 100 + (uint32_t)getpid() % 100,
	                   .iters = hammer_iters()};

	hammer_run(&h);
	ASSERT_U64_EQ(h.torn, 0);
}

/* Two processes, each writing and reading the same keys from disk. */
static void test_concurrent_processes(void)
{
	char *dir = tmpdir_make();
	pid_t pid[2];

	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			child_hammer(dir);
			_exit(0);
		}
	}
	for (int i = 0; i < 2; i++) {
		int status = 0;

		ASSERT_EQ(waitpid(pid[i], &status, 0), pid[i]);
		ASSERT(WIFEXITED(status));
		ASSERT_EQ(WEXITSTATUS(status), 0);
	}
	/* What they left is whole, and no temp file is left. */
	{
		gfn_kcache *kc = open_at(dir);

		for (int k = 0; k < NKEYS; k++) {
			void *bin = NULL;
			size_t n = 0;

			ASSERT_OK(gfn_kcache_get(kc, key_n(k), &bin, &n));
			ASSERT(payload_whole(bin, n));
			free(bin);
		}
		gfn_kcache_close(kc);
	}
	tmpdir_remove(dir);
}

/* ------------------------------------------------------------ bad disks */

/* Memory works when the directory cannot be used. */
static void check_memory_only(gfn_kcache *kc)
{
	ASSERT_NULL(gfn_kcache_dir(kc));
	ASSERT_EQ(stats_of(kc).disk, 0);
	ASSERT_OK(gfn_kcache_put(kc, key_n(10), "mem", 3));
	expect_hit(kc, key_n(10), "mem", 3);
	gfn_kcache_close(kc);
}

static void test_unusable_dir(void)
{
	char *dir = tmpdir_make(), sub[512];
	gfn_kcache *kc = NULL;

	/* Below a regular file: cannot be made, even by root. */
	snprintf(sub, sizeof sub, "%s/file", dir);
	file_write(sub, "x", 1);
	snprintf(sub, sizeof sub, "%s/file/kcache", dir);
	ASSERT_OK(gfn_kcache_open(sub, 1, &kc));
	check_memory_only(kc);
	/* Writable by others: someone could plant a binary. */
	snprintf(sub, sizeof sub, "%s/open", dir);
	ASSERT_EQ(mkdir(sub, 0700), 0);
	ASSERT_EQ(chmod(sub, 0777), 0);
	ASSERT_OK(gfn_kcache_open(sub, 1, &kc));
	check_memory_only(kc);
	/* Read-only: only means something when not root. */
	if (geteuid() != 0) {
		snprintf(sub, sizeof sub, "%s/ro", dir);
		ASSERT_EQ(mkdir(sub, 0500), 0);
		ASSERT_OK(gfn_kcache_open(sub, 1, &kc));
		check_memory_only(kc);
	}
	tmpdir_remove(dir);
}

/* The directory goes away under a running cache: puts still work. */
static void test_dir_removed(void)
{
	char *dir = tmpdir_make();
	gfn_kcache *kc = open_at(dir);

	ASSERT_EQ(rmdir(dir), 0);
	ASSERT_OK(gfn_kcache_put(kc, key_n(11), "still here", 10));
	expect_hit(kc, key_n(11), "still here", 10);
	ASSERT_GE(stats_of(kc).disk_errors, 1);
	gfn_kcache_close(kc);
	free(dir);
}

/* Set or unset (NULL) an environment variable. */
static void env_set(const char *name, const char *value)
{
	if (value)
		ASSERT_EQ(setenv(name, value, 1), 0);
	else
		ASSERT_EQ(unsetenv(name), 0);
}

static char *env_save(const char *name)
{
	const char *v = getenv(name);

	return v ? strdup(v) : NULL;
}

static void expect_default(const char *want_dir)
{
	gfn_kcache *kc = NULL;
	struct stat st;

	ASSERT_OK(gfn_kcache_open(NULL, 1, &kc));
	ASSERT_STR_EQ(gfn_kcache_dir(kc), want_dir);
	ASSERT_EQ(stat(want_dir, &st), 0);
	ASSERT_EQ(st.st_mode & 0777, 0700);
	gfn_kcache_close(kc);
}

static void test_default_dir(void)
{
	char *dir = tmpdir_make(), *xdg = env_save("XDG_CACHE_HOME");
	char *home = env_save("HOME"), a[512], b[512];
	gfn_kcache *kc = NULL;

	snprintf(a, sizeof a, "%s/xdg", dir);
	env_set("XDG_CACHE_HOME", a);
	snprintf(a, sizeof a, "%s/xdg/gfn/kcache", dir);
	expect_default(a);
	/* A relative XDG_CACHE_HOME is ignored (XDG spec): $HOME. */
	env_set("XDG_CACHE_HOME", "relative/path");
	snprintf(b, sizeof b, "%s/home", dir);
	env_set("HOME", b);
	snprintf(b, sizeof b, "%s/home/.cache/gfn/kcache", dir);
	expect_default(b);
	/* Neither: memory only. */
	env_set("XDG_CACHE_HOME", NULL);
	env_set("HOME", NULL);
	ASSERT_OK(gfn_kcache_open(NULL, 1, &kc));
	check_memory_only(kc);
	env_set("XDG_CACHE_HOME", xdg);
	env_set("HOME", home);
	free(xdg);
	free(home);
	tmpdir_remove(dir);
}

/* Temp files a crashed writer left long ago are swept; fresh ones (a
   writer at work in another process) are not. */
static void test_stale_tmp(void)
{
	char *dir = tmpdir_make(), old[512], fresh[512];
	struct timespec ts[2] = {{0, 0}, {0, 0}};
	gfn_kcache *kc;

	snprintf(old, sizeof old, "%s/.tmp-crashed", dir);
	snprintf(fresh, sizeof fresh, "%s/.tmp-busy", dir);
	file_write(old, "x", 1);
	file_write(fresh, "x", 1);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 2 * 3600;
	ASSERT_EQ(utimensat(AT_FDCWD, old, ts, 0), 0);
	kc = open_at(dir);
	ASSERT(!file_exists(old));
	ASSERT(file_exists(fresh));
	gfn_kcache_close(kc);
	tmpdir_remove(dir);
}

int main(void)
{
	TEST_RUN(test_roundtrip);
	TEST_RUN(test_miss_and_args);
	TEST_RUN(test_key_fields);
	TEST_RUN(test_second_instance);
	TEST_RUN(test_other_process);
	TEST_RUN(test_lru);
	TEST_RUN(test_damaged_files);
	TEST_RUN(test_fuzz_files);
	/* Processes first: fork before this process has ever had threads. */
	TEST_RUN(test_concurrent_processes);
	TEST_RUN(test_concurrent_threads);
	TEST_RUN(test_unusable_dir);
	TEST_RUN(test_dir_removed);
	TEST_RUN(test_default_dir);
	TEST_RUN(test_stale_tmp);
	return 0;
}
