/*
 * test_shm_store - the store's shared-memory layer from inside the engine
 * process: segments are sealed memfds announced to the region hook, the
 * allocator inside them, tenants, quotas, segments retired for another
 * tenant, the owner of invocation outputs, and the slot headers clients
 * read (published, checked, restored when scribbled on).
 */
#include "test_shm_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/shm_segment.h"
#include "runtime/util.h"

/* ----------------------------------------------------------- region hooks */

#define MAX_REGIONS 64

struct regions {
	void *base[MAX_REGIONS]; /* announced and not gone */
	size_t len[MAX_REGIONS]; /* their lengths */
	int n;                   /* announced */
	int gone;                /* gone */
	int fail;                /* nonzero: refuse the next one */
};

static gfn_status on_region(void *ctx, void *base, size_t len)
{
	struct regions *r = ctx;

	if (r->fail)
		return gfn__fail(GFN_EDEVICE, "refused by the test");
	ASSERT_LT(r->n, MAX_REGIONS);
	r->base[r->n] = base;
	r->len[r->n++] = len;
	return GFN_OK;
}

static void on_gone(void *ctx, void *base, size_t len)
{
	struct regions *r = ctx;

	for (int i = 0; i < r->n; i++) {
		if (r->base[i] == base) {
			ASSERT_EQ(r->len[i], len);
			r->base[i] = NULL;
			r->gone++;
			return;
		}
	}
	test_fail(__FILE__, __LINE__, "a region that was never announced");
}

/* Index of the live region holding [p, p+n), or -1. */
static int region_of(const struct regions *r, const void *p, size_t n)
{
	for (int i = 0; i < r->n; i++) {
		const char *b = r->base[i];

		if (b && (const char *)p >= b &&
		    (const char *)p + n <= b + r->len[i])
			return i;
	}
	return -1;
}

static gfn_store *store_with(size_t capacity, size_t seg, size_t quota,
                             struct regions *r, int gone_hook)
{
	gfn_store_config cfg = {.capacity = capacity,
	                        .max_objects = 1 << 16,
	                        .segment_size = seg,
	                        .tenant_quota = quota};
	gfn_store *st = NULL;

	if (r) {
		memset(r, 0, sizeof(*r));
		cfg.on_region = on_region;
		cfg.on_region_gone = gone_hook ? on_gone : NULL;
		cfg.region_ctx = r;
	}
	ASSERT_OK(gfn_store_create(&cfg, &st));
	return st;
}

static gfn_store_stats stats(gfn_store *st)
{
	gfn_store_stats s;

	gfn_store_get_stats(st, &s);
	return s;
}

/* A sealed u8 object of tenant t with n bytes of seed's pattern. */
static gfn_object make(gfn_store *st, uint32_t t, size_t n, uint64_t seed,
                       gfn_store_loc *loc)
{
	int64_t shape[1] = {(int64_t)n};
	gfn_store_loc l;
	gfn_object o;

	ASSERT_OK(gfn_store_create_as(st, t, GFN_U8, 1, shape, &o, &l));
	shm_fill(l.data, n, seed);
	ASSERT_OK(gfn_store_seal_as(st, t, o));
	if (loc)
		*loc = l;
	return o;
}

/* ----------------------------------------------------------- segments */

static void shm_store_segments_are_sealed_memfds(void)
{
	gfn_store *st = store_with(4 << 20, 1 << 20, 0, NULL, 0);
	gfn_store_loc loc;
	gfn_object o = make(st, 1, 1000, 5, &loc);
	int seals, fd = -1;
	char link[64], target[256];
	struct stat sb;
	size_t size;
	ssize_t n;
	char *p;

	ASSERT_OK(gfn_store_segment_fd(st, 1, loc.seg_id, &fd, &size));
	ASSERT_EQ(size, loc.seg_size);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	ASSERT_GT(n, 0);
	target[n] = '\0';
	ASSERT(strncmp(target, "/memfd:gfn-store-t1-", 20) == 0);
	seals = fcntl(fd, F_GET_SEALS);
	ASSERT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
	          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	/* No process can shrink it (SIGBUS for the others), grow it, or
	   seal it further. */
	ASSERT_EQ(ftruncate(fd, 0), -1);
	ASSERT_EQ(ftruncate(fd, (off_t)size * 2), -1);
	ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
	ASSERT_EQ(fstat(fd, &sb), 0);
	ASSERT_EQ((size_t)sb.st_size, size);
	/* The same memory in a second mapping: no copy anywhere. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT(p != MAP_FAILED);
	ASSERT(memcmp(p + loc.off + GFN_SHM_GRANULE, loc.data, 1000) == 0);
	p[loc.off + GFN_SHM_GRANULE] ^= 0x5a;
	ASSERT_EQ(((unsigned char *)loc.data)[0],
	          (unsigned char)p[loc.off + GFN_SHM_GRANULE]);
	munmap(p, size);
	close(fd);
	ASSERT_OK(gfn_store_release_as(st, 1, o));
	gfn_store_destroy(st);
}

static void shm_store_region_hook(void)
{
	struct regions r;
	gfn_store *st = store_with(16 << 20, 1 << 20, 0, &r, 1);
	gfn_object o[40];
	gfn_store_loc loc;
	gfn_store_stats s;
	int64_t shape[1] = {1000};

	for (int i = 0; i < 40; i++) {
		o[i] = make(st, 1 + (uint32_t)i % 3, 100000 + 7000 * (size_t)i,
		            (uint64_t)i, &loc);
		/* Announced before it was handed out, and it lies inside. */
		ASSERT_GE(region_of(&r, loc.data, loc.size), 0);
	}
	s = stats(st);
	ASSERT_EQ(r.n, (int)s.segments);
	ASSERT_GE(r.n, 3); /* three tenants: three segments at least */
	for (int i = 0; i < r.n; i++) {
		gfn_shm_seg_info info;

		ASSERT_OK(gfn__shm_seg_parse(r.base[i], r.len[i], &info));
		ASSERT_EQ(info.size, r.len[i]);
	}
	/* An object bigger than a segment gets one of its own. */
	o[0] = make(st, 1, 3 << 20, 1, &loc);
	ASSERT_EQ(r.n, (int)s.segments + 1);
	ASSERT_GE(r.len[r.n - 1], (size_t)3 << 20);
	ASSERT_EQ(region_of(&r, loc.data, loc.size), r.n - 1);
	/* A refused region fails the create with the hook's status. */
	r.fail = 1;
	shape[0] = 1 << 19;
	ASSERT_FAILS(gfn_store_create_as(st, 9, GFN_U8, 1, shape, &o[1], NULL),
	             GFN_EDEVICE);
	ASSERT_EQ(stats(st).segments, s.segments + 1);
	r.fail = 0;
	ASSERT_OK(gfn_store_check(st));
	ASSERT_EQ(r.gone, 0);
	gfn_store_destroy(st);
}

/* ---------------------------------------------------------- allocator */

static void shm_store_allocator_random(void)
{
	enum { LIVE = 64 };
	gfn_store *st = store_with(32 << 20, 1 << 20, 0, NULL, 0);
	struct {
		gfn_object id;     /* a live object */
		uint64_t seed;     /* checksum of its bytes */
		size_t n;          /* its size; 0: slot unused */
		gfn_store_loc loc; /* where it lies */
	} live[LIVE] = {0};
	size_t iters = test_scaled(20000, 2000);
	uint64_t rng = 17;
	gfn_store_stats s;
	int64_t shape[1];

	for (size_t it = 0; it < iters; it++) {
		int k = (int)(test_rand(&rng) % LIVE);

		if (live[k].n) {
			ASSERT_U64_EQ(shm_hash(live[k].loc.data, live[k].n),
			              live[k].seed);
			ASSERT_OK(gfn_store_release_as(st, 1, live[k].id));
			ASSERT_OK(gfn_store_delete_as(st, 1, live[k].id));
			live[k].n = 0;
			continue;
		}
		live[k].n = 1 + test_rand(&rng) %
		                        (test_rand(&rng) % 4 ? 2000 : 200000);
		live[k].id = make(st, 1, live[k].n, it, &live[k].loc);
		live[k].seed = shm_hash(live[k].loc.data, live[k].n);
		if (it % 500 == 0)
			ASSERT_OK(gfn_store_check(st));
	}
	ASSERT_OK(gfn_store_check(st));
	for (int k = 0; k < LIVE; k++) {
		if (!live[k].n)
			continue;
		ASSERT_U64_EQ(shm_hash(live[k].loc.data, live[k].n),
		              live[k].seed);
		ASSERT_OK(gfn_store_release_as(st, 1, live[k].id));
		ASSERT_OK(gfn_store_delete_as(st, 1, live[k].id));
	}
	s = stats(st);
	ASSERT_EQ(s.objects, 0);
	ASSERT_EQ(s.bytes, 0);
	ASSERT_OK(gfn_store_check(st)); /* no two free blocks side by side */
	/* Everything merged back: a block as big as a segment's data area
	   fits in a segment that is already there. */
	shape[0] = (int64_t)((1 << 20) - 2 * GFN_SHM_GRANULE);
	ASSERT_OK(gfn_store_create_as(st, 1, GFN_U8, 1, shape, &live[0].id,
	                              NULL));
	ASSERT_EQ(stats(st).segments, s.segments);
	ASSERT_EQ(stats(st).host_allocs, s.host_allocs);
	gfn_store_destroy(st);
}

static void shm_store_enomem_at_once(void)
{
	gfn_store *st = store_with(1 << 20, 0, 0, NULL, 0);
	int64_t shape[1] = {300 << 10};
	gfn_object o[3], x;
	uint64_t t0;

	for (int i = 0; i < 3; i++)
		ASSERT_OK(gfn_store_create_as(st, 1, GFN_U8, 1, shape, &o[i],
		                              NULL));
	t0 = test_now_ns();
	ASSERT_FAILS(gfn_store_create_as(st, 1, GFN_U8, 1, shape, &x, NULL),
	             GFN_ENOMEM);
	ASSERT_FAILS(gfn_store_create_as(st, 2, GFN_U8, 1, shape, &x, NULL),
	             GFN_ENOMEM);
	ASSERT_LT(test_now_ns() - t0, 1000000000ull);
	ASSERT_OK(gfn_store_release_as(st, 1, o[1])); /* unsealed: freed */
	ASSERT_OK(gfn_store_create_as(st, 2, GFN_U8, 1, shape, &x, NULL));
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/* ------------------------------------------------------------ tenants */

static void shm_store_tenants(void)
{
	gfn_store *st = store_with(8 << 20, 1 << 20, 0, NULL, 0);
	gfn_store_loc l1, l2, l;
	gfn_object a = make(st, 1, 5000, 1, &l1), b = make(st, 2, 5000, 2, &l2);
	uint32_t segs[2];
	int fd = -1;
	size_t size;

	ASSERT_NE(l1.seg_id, l2.seg_id);
	ASSERT_FAILS(gfn_store_get_as(st, 2, a, &l), GFN_EACCES);
	ASSERT_FAILS(gfn_store_map_as(st, 2, a, &l), GFN_EACCES);
	ASSERT_FAILS(gfn_store_seal_as(st, 2, a), GFN_EACCES);
	ASSERT_FAILS(gfn_store_release_as(st, 2, a), GFN_EACCES);
	ASSERT_FAILS(gfn_store_delete_as(st, 2, a), GFN_EACCES);
	ASSERT_FAILS(gfn_store_segment_fd(st, 2, l1.seg_id, &fd, &size),
	             GFN_EACCES);
	ASSERT_EQ(fd, -1);
	segs[0] = l1.seg_id;
	segs[1] = l2.seg_id;
	ASSERT_U64_EQ(gfn_store_segments_live(st, 2, 2, segs), 2);
	ASSERT_U64_EQ(gfn_store_segments_live(st, 0, 2, segs), 3);
	/* The engine may use everything. */
	ASSERT_OK(gfn_store_get_as(st, 0, a, &l));
	ASSERT_OK(gfn_store_release_as(st, 0, a));
	ASSERT_OK(gfn_store_get_as(st, 1, a, &l));
	ASSERT_EQ(l.tenant, 1);
	ASSERT_OK(gfn_store_release_as(st, 1, a));
	/* Nothing was taken by the refused calls. */
	ASSERT_OK(gfn_store_release_as(st, 1, a));
	ASSERT_FAILS(gfn_store_release_as(st, 1, a), GFN_ESTATE);
	ASSERT_OK(gfn_store_release_as(st, 2, b));
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

static void shm_store_quota(void)
{
	gfn_store *st = store_with(8 << 20, 1 << 20, 1 << 20, NULL, 0);
	gfn_object held[4], c2, x, big;
	int64_t shape[1] = {256 << 10};
	gfn_store_loc l;
	uint64_t ev;

	c2 = make(st, 2, 256 << 10, 9, &l);
	ASSERT_OK(gfn_store_release_as(st, 2, c2)); /* cached, tenant 2 */
	for (int i = 0; i < 4; i++)
		held[i] = make(st, 1, 256 << 10, (uint64_t)i, NULL);
	ASSERT_FAILS(gfn_store_create_as(st, 1, GFN_U8, 1, shape, &x, NULL),
	             GFN_ENOMEM);
	/* The quota is the tenant's: others and the engine go on. */
	ASSERT_OK(gfn_store_create_as(st, 3, GFN_U8, 1, shape, &x, NULL));
	ASSERT_OK(gfn_store_release_as(st, 3, x));
	shape[0] = 2 << 20;
	ASSERT_OK(gfn_store_create_as(st, 0, GFN_U8, 1, shape, &big, NULL));
	ASSERT_OK(gfn_store_release_as(st, 0, big));
	/* Over its quota, tenant 1 evicts its own cached objects only. */
	ASSERT_OK(gfn_store_release_as(st, 1, held[0]));
	ev = stats(st).evictions;
	shape[0] = 256 << 10;
	ASSERT_OK(gfn_store_create_as(st, 1, GFN_U8, 1, shape, &x, NULL));
	ASSERT_EQ(stats(st).evictions, ev + 1);
	ASSERT_FAILS_ID(gfn_store_get_as(st, 1, held[0], &l));
	ASSERT_OK(gfn_store_get_as(st, 2, c2, &l));
	ASSERT_OK(gfn_store_release_as(st, 2, c2));
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/* Tenant 1 leaves cached objects in every segment the budget allows. */
static void fill_tenant1(gfn_store *st, gfn_object *o, int n)
{
	for (int i = 0; i < n; i++) {
		o[i] = make(st, 1, 480 << 10, (uint64_t)i, NULL);
		ASSERT_OK(gfn_store_release_as(st, 1, o[i]));
	}
}

static void shm_store_retire_for_other_tenant(void)
{
	struct regions r;
	/* capacity 2 MiB, 512 KiB segments: at most 6 mapped at once */
	gfn_store *st = store_with(2 << 20, 512 << 10, 0, &r, 1);
	gfn_object o[4], t2[4];
	gfn_store_stats s;

	fill_tenant1(st, o, 4);
	ASSERT_EQ(stats(st).segments, 4);
	for (int i = 0; i < 4; i++)
		t2[i] = make(st, 2, 480 << 10, 100u + (uint64_t)i, NULL);
	s = stats(st);
	ASSERT_GT(s.retired, 0);
	ASSERT_EQ(r.gone, (int)s.retired);
	ASSERT_LE(s.mapped_bytes, (size_t)3 << 20);
	ASSERT_OK(gfn_store_check(st));
	for (int i = 0; i < 4; i++)
		ASSERT_OK(gfn_store_release_as(st, 2, t2[i]));
	gfn_store_destroy(st);

	/* Without a hook to drop registrations, nothing is ever unmapped:
	   the other tenant is refused instead, at once. */
	st = store_with(2 << 20, 512 << 10, 0, &r, 0);
	fill_tenant1(st, o, 4);
	for (int i = 0; i < 2; i++)
		t2[i] = make(st, 2, 480 << 10, (uint64_t)i, NULL);
	ASSERT_FAILS(gfn_store_create_as(st, 2, GFN_U8, 1,
	                                 (int64_t[]){480 << 10}, &t2[2], NULL),
	             GFN_ENOMEM);
	ASSERT_EQ(stats(st).retired, 0);
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/* ------------------------------------------------------------ outputs */

static void shm_store_output_owner(void)
{
	gfn_store *st = store_with(8 << 20, 1 << 20, 0, NULL, 0);
	gfn_object e0 = make(st, 0, 16, 1, NULL), a = make(st, 1, 16, 2, NULL);
	gfn_object b = make(st, 2, 16, 3, NULL), out[2];
	gfn_tensor t[3], ot[2] = {{.dtype = GFN_F32, .ndim = 1, .shape = {4}},
	                          {.dtype = GFN_I8, .ndim = 0}};
	gfn_store_loc l;
	uint32_t owner;

	ASSERT_OK(
	        gfn_store_acquire(st, 0, 2, (gfn_object[]){e0, a}, t, &owner));
	ASSERT_EQ(owner, 1);
	gfn_store_release_n(st, 2, (gfn_object[]){e0, a});
	ASSERT_OK(gfn_store_acquire(st, 0, 2, (gfn_object[]){a, b}, t, &owner));
	ASSERT_EQ(owner, 0); /* mixed: nobody's but the engine's */
	gfn_store_release_n(st, 2, (gfn_object[]){a, b});
	ASSERT_OK(gfn_store_acquire(st, 0, 1, &e0, t, &owner));
	ASSERT_EQ(owner, 0);
	gfn_store_release_n(st, 1, &e0);
	/* On behalf of tenant 1: its own and the engine's objects, outputs
	   its own; another tenant's object is refused, nothing kept. */
	ASSERT_OK(
	        gfn_store_acquire(st, 1, 2, (gfn_object[]){e0, a}, t, &owner));
	ASSERT_EQ(owner, 1);
	gfn_store_release_n(st, 2, (gfn_object[]){e0, a});
	ASSERT_OK(gfn_store_acquire(st, 2, 1, &e0, t, &owner));
	ASSERT_EQ(owner, 2);
	gfn_store_release_n(st, 1, &e0);
	ASSERT_FAILS(
	        gfn_store_acquire(st, 1, 2, (gfn_object[]){a, b}, t, &owner),
	        GFN_EACCES);
	ASSERT_OK(gfn_store_check(st));

	ASSERT_OK(gfn_store_create_n(st, 1, 2, ot, out));
	ASSERT_EQ(ot[0].nbytes, 16);
	memset(ot[0].data, 0x3c, 16);
	gfn_store_seal_n(st, 2, out);
	ASSERT_OK(gfn_store_get_as(st, 1, out[0], &l));
	ASSERT_EQ(l.tenant, 1);
	ASSERT_EQ(((unsigned char *)l.data)[15], 0x3c);
	ASSERT_OK(gfn_store_release_as(st, 1, out[0]));
	ASSERT_FAILS(gfn_store_get_as(st, 2, out[1], &l), GFN_EACCES);
	gfn_store_discard_n(st, 2, out);
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/* -------------------------------------------------------- slot headers */

static gfn_shm_slot header(const gfn_store_loc *l)
{
	const char *base = (const char *)l->data - GFN_SHM_GRANULE - l->off;
	gfn_shm_slot h;

	ASSERT_OK(gfn__shm_slot_parse(base, l->seg_size, l->off, &h));
	return h;
}

static void shm_store_headers_published(void)
{
	gfn_store *st = store_with(8 << 20, 1 << 20, 0, NULL, 0);
	int64_t shape[3] = {2, 3, 5};
	gfn_store_loc l, l2;
	gfn_shm_slot h;
	gfn_object o;

	ASSERT_OK(gfn_store_create_as(st, 4, GFN_F64, 3, shape, &o, &l));
	h = header(&l);
	ASSERT_U64_EQ(h.id_hi, o.hi);
	ASSERT_U64_EQ(h.id_lo, o.lo);
	ASSERT_EQ(h.tenant, 4);
	ASSERT_EQ(h.state, GFN_SHM_OPEN);
	ASSERT_EQ(h.refs, 1);
	ASSERT_EQ(h.dtype, GFN_F64);
	ASSERT_EQ(h.ndim, 3);
	ASSERT_EQ(h.shape[2], 5);
	ASSERT_EQ(h.size, 240);
	ASSERT_EQ(h.off, l.off);
	ASSERT_OK(gfn_store_seal_as(st, 4, o));
	ASSERT_OK(gfn_store_get_as(st, 4, o, &l2));
	h = header(&l);
	ASSERT_EQ(h.state, GFN_SHM_SEALED);
	ASSERT_EQ(h.refs, 2);
	ASSERT_OK(gfn_store_release_as(st, 4, o));
	ASSERT_OK(gfn_store_release_as(st, 4, o));
	ASSERT_EQ(header(&l).refs, 0);
	ASSERT_OK(gfn_store_delete_as(st, 4, o));
	/* Freed: a reader holding the old place finds no object there. */
	ASSERT_FAILS(
	        gfn__shm_slot_parse((char *)l.data - GFN_SHM_GRANULE - l.off,
	                            l.seg_size, l.off, &h),
	        GFN_EINVAL);
	gfn_store_destroy(st);
}

static void shm_store_corrupt_header_restored(void)
{
	gfn_store *st = store_with(8 << 20, 1 << 20, 0, NULL, 0);
	int64_t shape[1] = {64};
	gfn_store_loc l;
	gfn_object o, other = make(st, 1, 64, 8, NULL);
	uint64_t *w;
	int fd;
	size_t size;
	char *seg;

	ASSERT_OK(gfn_store_create_as(st, 1, GFN_U8, 1, shape, &o, &l));
	w = (uint64_t *)((char *)l.data - GFN_SHM_GRANULE);
	w[9] = 1000; /* shape[2] of a 1-d object */
	ASSERT_FAILS(gfn_store_seal_as(st, 1, o), GFN_EINVAL);
	ASSERT(strstr(gfn_error_detail(), "restored") != NULL);
	header(&l); /* parses again */
	ASSERT_OK(gfn_store_seal_as(st, 1, o));
	w[0] = 0; /* the magic */
	ASSERT_FAILS(gfn_store_get_as(st, 1, o, &l), GFN_EINVAL);
	ASSERT_OK(gfn_store_get_as(st, 1, o, &l));
	ASSERT_OK(gfn_store_release_as(st, 1, o));
	w[1] ^= 4; /* the id: a checksum mismatch */
	ASSERT_FAILS(gfn_store_get_as(st, 1, o, &l), GFN_EINVAL);
	/* A scribbled segment header is whole again for the next client. */
	seg = (char *)l.data - GFN_SHM_GRANULE - l.off;
	memset(seg, 0xff, 64);
	ASSERT_OK(gfn_store_segment_fd(st, 1, l.seg_id, &fd, &size));
	close(fd);
	{
		gfn_shm_seg_info info;

		ASSERT_OK(gfn__shm_seg_parse(seg, size, &info));
		ASSERT_EQ(info.seg_id, l.seg_id);
	}
	ASSERT_OK(gfn_store_check(st));
	ASSERT_OK(gfn_store_release_as(st, 1, o));
	ASSERT_OK(gfn_store_release_as(st, 1, other));
	gfn_store_destroy(st);
}

/* A dedicated segment stays mapped when empty, and is used again. */
static void shm_store_big_objects_reuse_segment(void)
{
	gfn_store *st = store_with(16 << 20, 1 << 20, 0, NULL, 0);
	gfn_store_stats s0 = {0}, s1;
	gfn_object o;
	int64_t shape[1] = {5 << 20};
	gfn_store_loc l;

	for (int i = 0; i < 21; i++) {
		if (i == 1)
			s0 = stats(st);
		ASSERT_OK(gfn_store_create_as(st, 0, GFN_U8, 1, shape, &o, &l));
		((char *)l.data)[l.size - 1] = (char)i; /* touch its end */
		ASSERT_OK(gfn_store_release_as(st, 0, o));
	}
	s1 = stats(st);
	ASSERT_EQ(s1.segments, s0.segments);
	ASSERT_U64_EQ(s1.host_allocs, s0.host_allocs);
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

int main(void)
{
	printf("# test_shm_store\n");
	TEST_RUN(shm_store_segments_are_sealed_memfds);
	TEST_RUN(shm_store_region_hook);
	TEST_RUN(shm_store_allocator_random);
	TEST_RUN(shm_store_enomem_at_once);
	TEST_RUN(shm_store_tenants);
	TEST_RUN(shm_store_quota);
	TEST_RUN(shm_store_retire_for_other_tenant);
	TEST_RUN(shm_store_output_owner);
	TEST_RUN(shm_store_headers_published);
	TEST_RUN(shm_store_corrupt_header_restored);
	TEST_RUN(shm_store_big_objects_reuse_segment);
	return 0;
}
