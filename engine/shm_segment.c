/*
 * shm_segment.c - memfd segments and the headers inside them (see
 * shm_segment.h).
 *
 * Word layout of a slot header (64-bit words, host byte order: every
 * process that maps a segment runs on the same machine):
 *
 *   w[0]  magic (bits 0-31) | state << 32 | dtype << 40 | ndim << 48 |
 *         layout version << 56
 *   w[1]  id, high half          w[2]  id, low half
 *   w[3]  tenant (bits 0-31) | references << 32
 *   w[4]  data bytes             w[5]  offset of this header
 *   w[6]  block bytes            w[7..14]  shape
 *   w[15] checksum (bits 0-31) of every field but state and references
 *
 * and of a segment header:
 *
 *   w[0]  magic    w[1] version | granule << 32   w[2] id | tenant << 32
 *   w[3]  size     w[4] offset of the first block  w[5] checksum of w[0..4]
 *
 * State and references change while an object lives, so they are left
 * out of the checksum; everything else is fixed when the block is handed
 * out, and a checksum over it catches a header that was scribbled on.
 */
#include "engine/shm_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/util.h"

#define NW ((int)(GFN_SHM_GRANULE / 8)) /* words per header */
#define STATE_MASK (0xffull << 32)
#define LOW32 0xffffffffull

/* ---- words ------------------------------------------------------------------ */

static void load_words(const void *p, uint64_t *w)
{
	const uint64_t *src = p;

	for (int i = 0; i < NW; i++)
		w[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void store_words(void *p, const uint64_t *w, int n)
{
	uint64_t *dst = p;

	for (int i = 0; i < n; i++)
		__atomic_store_n(&dst[i], w[i], __ATOMIC_RELAXED);
}

/* FNV-1a over n words, each masked. */
static uint32_t checksum(const uint64_t *w, const uint64_t *mask, int n)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < n; i++) {
		uint64_t v = w[i] & (mask ? mask[i] : ~0ull);

		for (int b = 0; b < 8; b++) {
			h ^= (uint8_t)(v >> (8 * b));
			h *= 16777619u;
		}
	}
	return h;
}

/* Words from..NW-1 (reserved) are zero. */
static int reserved_zero(const uint64_t *w, int from)
{
	for (int i = from; i < NW; i++)
		if (w[i])
			return 0;
	return 1;
}

uint64_t gfn__shm_block_bytes(uint64_t size)
{
	if (size > UINT64_MAX - 2 * GFN_SHM_GRANULE)
		return 0;
	return GFN_SHM_GRANULE +
	       (size + GFN_SHM_GRANULE - 1) / GFN_SHM_GRANULE * GFN_SHM_GRANULE;
}

/* ---- segment header ------------------------------------------------------------ */

static void seg_encode(const gfn_shm_seg_info *in, uint64_t *w)
{
	memset(w, 0, NW * sizeof(*w));
	w[0] = GFN_SHM_SEG_MAGIC;
	w[1] = GFN_SHM_VERSION | (uint64_t)GFN_SHM_GRANULE << 32;
	w[2] = in->seg_id | (uint64_t)in->tenant << 32;
	w[3] = in->size;
	w[4] = in->data_off;
	w[5] = checksum(w, NULL, 5);
}

void gfn__shm_seg_write(void *base, const gfn_shm_seg_info *info)
{
	uint64_t w[NW];

	seg_encode(info, w);
	store_words(base, w, NW);
}

gfn_status gfn__shm_seg_parse(const void *base, size_t len,
                              gfn_shm_seg_info *out)
{
	uint64_t w[NW];

	if (!base || ((uintptr_t)base & 7) || len < 2 * GFN_SHM_GRANULE)
		return gfn__fail(GFN_EINVAL,
		                 "segment of %zu bytes is too small to hold "
		                 "a header",
		                 len);
	load_words(base, w);
	if (w[0] != GFN_SHM_SEG_MAGIC)
		return gfn__fail(GFN_EINVAL, "segment header: bad magic");
	if ((uint32_t)w[1] != GFN_SHM_VERSION ||
	    (w[1] >> 32) != GFN_SHM_GRANULE)
		return gfn__fail(GFN_EINVAL,
		                 "segment header: layout %u/granule %u, "
		                 "expected %u/%u",
		                 (unsigned)(uint32_t)w[1],
		                 (unsigned)(w[1] >> 32), GFN_SHM_VERSION,
		                 GFN_SHM_GRANULE);
	if (w[5] != checksum(w, NULL, 5) || !reserved_zero(w, 6))
		return gfn__fail(GFN_EINVAL, "segment header: bad checksum");
	if (w[3] != len || w[4] != GFN_SHM_GRANULE)
		return gfn__fail(GFN_EINVAL,
		                 "segment header: size %llu/data at %llu for "
		                 "a mapping of %zu bytes",
		                 (unsigned long long)w[3],
		                 (unsigned long long)w[4], len);
	out->seg_id = (uint32_t)w[2];
	out->tenant = (uint32_t)(w[2] >> 32);
	out->size = w[3];
	out->data_off = w[4];
	return GFN_OK;
}

/* ---- slot header ------------------------------------------------------------------ */

static const uint64_t slot_mask[NW] = {
        ~STATE_MASK, ~0ull, ~0ull, LOW32, ~0ull, ~0ull, ~0ull, ~0ull,
        ~0ull,       ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, 0,
};

static uint64_t word0(const gfn_shm_slot *sl)
{
	return GFN_SHM_SLOT_MAGIC | (uint64_t)sl->state << 32 |
	       (uint64_t)sl->dtype << 40 | (uint64_t)sl->ndim << 48 |
	       (uint64_t)GFN_SHM_VERSION << 56;
}

static uint64_t word3(const gfn_shm_slot *sl)
{
	return sl->tenant | (uint64_t)sl->refs << 32;
}

void gfn__shm_slot_write(void *seg_base, const gfn_shm_slot *sl)
{
	uint64_t w[NW];

	w[0] = word0(sl);
	w[1] = sl->id_hi;
	w[2] = sl->id_lo;
	w[3] = word3(sl);
	w[4] = sl->size;
	w[5] = sl->off;
	w[6] = sl->block;
	for (int d = 0; d < GFN_MAX_DIMS; d++)
		w[7 + d] = (uint64_t)sl->shape[d];
	w[15] = checksum(w, slot_mask, NW - 1);
	store_words((char *)seg_base + sl->off, w, NW);
}

void gfn__shm_slot_update(void *seg_base, const gfn_shm_slot *sl)
{
	uint64_t *w = (uint64_t *)((char *)seg_base + sl->off);

	__atomic_store_n(&w[0], word0(sl), __ATOMIC_RELAXED);
	__atomic_store_n(&w[3], word3(sl), __ATOMIC_RELAXED);
}

void gfn__shm_slot_clear(void *seg_base, uint64_t off)
{
	uint64_t *w = (uint64_t *)((char *)seg_base + off);

	__atomic_store_n(&w[0], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&w[15], 0, __ATOMIC_RELAXED);
}

/* dtype, ndim, shape and size agree; the size in *bytes. */
static gfn_status check_tensor(const uint64_t *w, uint64_t *bytes)
{
	unsigned dtype = (unsigned)(w[0] >> 40) & 0xff;
	unsigned ndim = (unsigned)(w[0] >> 48) & 0xff;
	uint64_t n = gfn_dtype_size((gfn_dtype)dtype);

	if (!n || ndim > GFN_MAX_DIMS)
		return gfn__fail(GFN_EINVAL,
		                 "slot header: dtype %u/ndim %u is invalid",
		                 dtype, ndim);
	for (unsigned d = 0; d < GFN_MAX_DIMS; d++) {
		int64_t x = (int64_t)w[7 + d];

		if (x < 0 || (d >= ndim && x != 0))
			return gfn__fail(GFN_EINVAL,
			                 "slot header: extent %u is %lld", d,
			                 (long long)x);
		if (d < ndim && x && n > UINT64_MAX / 4 / (uint64_t)x)
			return gfn__fail(GFN_EINVAL,
			                 "slot header: shape overflows");
		if (d < ndim)
			n *= (uint64_t)x;
	}
	*bytes = n;
	return GFN_OK;
}

/* The block described by w lies inside a segment of len bytes. */
static gfn_status check_block(const uint64_t *w, size_t len, uint64_t off,
                              uint64_t bytes)
{
	uint64_t need = gfn__shm_block_bytes(bytes);

	if (w[4] != bytes)
		return gfn__fail(GFN_EINVAL,
		                 "slot header: size %llu but the shape "
		                 "makes %llu",
		                 (unsigned long long)w[4],
		                 (unsigned long long)bytes);
	if (w[5] != off)
		return gfn__fail(
		        GFN_EINVAL, "slot header at %llu says it is at %llu",
		        (unsigned long long)off, (unsigned long long)w[5]);
	if (!need || w[6] < need || w[6] % GFN_SHM_GRANULE || w[6] > len - off)
		return gfn__fail(GFN_EINVAL,
		                 "slot header: block of %llu bytes at %llu "
		                 "does not fit %llu data bytes in a segment "
		                 "of %zu",
		                 (unsigned long long)w[6],
		                 (unsigned long long)off,
		                 (unsigned long long)bytes, len);
	return GFN_OK;
}

static void slot_decode(const uint64_t *w, gfn_shm_slot *out)
{
	out->state = (uint8_t)(w[0] >> 32);
	out->dtype = (uint8_t)(w[0] >> 40);
	out->ndim = (uint8_t)(w[0] >> 48);
	out->id_hi = w[1];
	out->id_lo = w[2];
	out->tenant = (uint32_t)w[3];
	out->refs = (uint32_t)(w[3] >> 32);
	out->size = w[4];
	out->off = w[5];
	out->block = w[6];
	for (int d = 0; d < GFN_MAX_DIMS; d++)
		out->shape[d] = (int64_t)w[7 + d];
}

gfn_status gfn__shm_slot_parse(const void *seg_base, size_t len, uint64_t off,
                               gfn_shm_slot *out)
{
	uint64_t w[NW], bytes = 0;
	unsigned state;
	gfn_status s;

	if (!seg_base || ((uintptr_t)seg_base & 7) ||
	    len < 2 * GFN_SHM_GRANULE || off < GFN_SHM_GRANULE ||
	    off > len - GFN_SHM_GRANULE || off % GFN_SHM_GRANULE)
		return gfn__fail(GFN_EINVAL,
		                 "slot offset %llu is not a block in a "
		                 "segment of %zu bytes",
		                 (unsigned long long)off, len);
	load_words((const char *)seg_base + off, w);
	state = (unsigned)(w[0] >> 32) & 0xff;
	if ((uint32_t)w[0] != GFN_SHM_SLOT_MAGIC)
		return gfn__fail(GFN_EINVAL,
		                 "slot header at %llu: bad magic (freed or "
		                 "overwritten)",
		                 (unsigned long long)off);
	if ((w[0] >> 56) != GFN_SHM_VERSION ||
	    (state != GFN_SHM_OPEN && state != GFN_SHM_SEALED))
		return gfn__fail(
		        GFN_EINVAL, "slot header at %llu: version %u, state %u",
		        (unsigned long long)off, (unsigned)(w[0] >> 56), state);
	if ((s = check_tensor(w, &bytes)) != GFN_OK ||
	    (s = check_block(w, len, off, bytes)) != GFN_OK)
		return s;
	if (w[15] != checksum(w, slot_mask, NW - 1))
		return gfn__fail(GFN_EINVAL,
		                 "slot header at %llu: bad checksum",
		                 (unsigned long long)off);
	slot_decode(w, out);
	return GFN_OK;
}

int gfn__shm_slot_same(const gfn_shm_slot *a, const gfn_shm_slot *b)
{
	return a->id_hi == b->id_hi && a->id_lo == b->id_lo &&
	       a->tenant == b->tenant && a->state == b->state &&
	       a->dtype == b->dtype && a->ndim == b->ndim &&
	       a->size == b->size && a->off == b->off && a->block == b->block &&
	       !memcmp(a->shape, b->shape, sizeof(a->shape));
}

/* ---- memfd segments ------------------------------------------------------------------ */

gfn_status gfn__shm_create(size_t size, const char *name, gfn_shm_map *out)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	out->fd = -1;
	out->base = NULL;
	if (fd < 0)
		return gfn__fail(GFN_ESYS, "memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0) {
		gfn_status s =
		        gfn__fail(errno == ENOMEM || errno == EFBIG ? GFN_ENOMEM
		                                                    : GFN_ESYS,
		                  "ftruncate of a %zu-byte segment: %s", size,
		                  strerror(errno));
		close(fd);
		return s;
	}
	/* No process that maps it may shrink it (SIGBUS for the others),
	   grow it, or add seals that would stop new writable mappings. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		close(fd);
		return gfn__fail(GFN_ESYS, "sealing a segment: %s",
		                 strerror(errno));
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return gfn__fail(GFN_ENOMEM, "mapping a %zu-byte segment: %s",
		                 size, strerror(errno));
	}
	out->fd = fd;
	out->base = p;
	out->size = size;
	return GFN_OK;
}

gfn_status gfn__shm_attach(int fd, size_t expected, gfn_shm_map *out)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	void *p;

	out->fd = -1;
	out->base = NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || seals < 0)
		return gfn__fail(GFN_EINVAL,
		                 "the engine sent a descriptor that is not "
		                 "a sealed memfd");
	if (!(seals & F_SEAL_SHRINK) || (uint64_t)st.st_size != expected)
		return gfn__fail(GFN_EINVAL,
		                 "segment of %lld bytes (seals 0x%x), "
		                 "expected %zu bytes sealed against shrinking",
		                 (long long)st.st_size, seals, expected);
	p = mmap(NULL, expected, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return gfn__fail(GFN_ENOMEM, "mapping a %zu-byte segment: %s",
		                 expected, strerror(errno));
	out->fd = fd;
	out->base = p;
	out->size = expected;
	return GFN_OK;
}

void gfn__shm_close(gfn_shm_map *m, int punch)
{
	if (m->base) {
		if (punch && m->fd >= 0)
			(void)fallocate(m->fd,
			                FALLOC_FL_PUNCH_HOLE |
			                        FALLOC_FL_KEEP_SIZE,
			                0, (off_t)m->size);
		munmap(m->base, m->size);
	}
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	m->base = NULL;
}
