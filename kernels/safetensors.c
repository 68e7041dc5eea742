/*
 * safetensors.c - the bounds-checked safetensors reader (safetensors.h).
 *
 * The JSON header is parsed with cJSON, which takes an explicit length, so
 * a header without a terminating NUL is never read past its end. Numbers
 * in JSON are doubles: an extent or offset is accepted only when it is a
 * non-negative integer below 2^53, where doubles are still exact.
 */
#include "kernels/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/util.h"

/* Largest integer a JSON number may carry exactly (2^53). */
#define EXACT_MAX 9007199254740992.0

/* ---- number conversion --------------------------------------------------- */

float gfn__f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
	float f;

	if (exp == 0x1f) { /* inf or NaN: keep the payload's top bits */
		bits = sign | 0x7f800000u | (man << 13);
	} else if (exp != 0) {
		bits = sign | ((exp + 112u) << 23) | (man << 13);
	} else if (man == 0) {
		bits = sign;
	} else { /* subnormal half: normalise it, every one fits in f32 */
		exp = 113;
		while (!(man & 0x400u)) {
			man <<= 1;
			exp--;
		}
		bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
	}
	memcpy(&f, &bits, sizeof f);
	return f;
}

float gfn__bf16_to_f32(uint16_t b)
{
	uint32_t bits = (uint32_t)b << 16;
	float f;

	memcpy(&f, &bits, sizeof f);
	return f;
}

/* ---- header checks ------------------------------------------------------- */

static int exact_uint(const cJSON *j, uint64_t *out)
{
	double v;

	if (!cJSON_IsNumber(j))
		return 0;
	v = j->valuedouble;
	if (!(v >= 0.0 && v < EXACT_MAX) || v != (double)(uint64_t)v)
		return 0;
	*out = (uint64_t)v;
	return 1;
}

static gfn_status parse_dtype(const cJSON *j, const char *name, gfn_dtype *d)
{
	const char *s = cJSON_GetStringValue(j);

	if (!s)
		return gfn__fail(GFN_EINVAL,
		                 "tensor '%s': dtype is not a string", name);
	if (!strcmp(s, "F32"))
		*d = GFN_F32;
	else if (!strcmp(s, "F16"))
		*d = GFN_F16;
	else if (!strcmp(s, "BF16"))
		*d = GFN_BF16;
	else
		return gfn__fail(GFN_ENOTSUP,
		                 "tensor '%s': dtype %.16s is not supported "
		                 "(F32, F16, BF16)",
		                 name, s);
	return GFN_OK;
}

/* Shape and element count; the count * element size cannot overflow. */
static gfn_status parse_shape(const cJSON *j, gfn_st_tensor *t)
{
	const cJSON *d;
	size_t count = 1, esize = gfn_dtype_size(t->dtype);
	uint64_t v;

	if (!cJSON_IsArray(j))
		return gfn__fail(GFN_EINVAL,
		                 "tensor '%s': shape is not an array", t->name);
	if (cJSON_GetArraySize(j) > GFN_MAX_DIMS)
		return gfn__fail(GFN_EINVAL, "tensor '%s': more than %d dims",
		                 t->name, GFN_MAX_DIMS);
	t->ndim = 0;
	cJSON_ArrayForEach(d, j)
	{
		if (!exact_uint(d, &v))
			return gfn__fail(GFN_EINVAL,
			                 "tensor '%s': extent %d is not a "
			                 "non-negative integer",
			                 t->name, t->ndim);
		t->shape[t->ndim++] = (int64_t)v;
	}
	/* A zero extent makes the tensor empty whatever the others are. */
	for (int i = 0; i < t->ndim; i++)
		if (t->shape[i] == 0)
			count = 0;
	for (int i = 0; i < t->ndim && count; i++) {
		v = (uint64_t)t->shape[i];
		if (count > SIZE_MAX / esize / v)
			return gfn__fail(GFN_ERANGE,
			                 "tensor '%s': shape overflows",
			                 t->name);
		count *= (size_t)v;
	}
	t->count = count;
	t->nbytes = count * esize;
	return GFN_OK;
}

static gfn_status parse_offsets(const cJSON *j, size_t data_size,
                                gfn_st_tensor *t)
{
	uint64_t b, e;

	if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 2 ||
	    !exact_uint(cJSON_GetArrayItem(j, 0), &b) ||
	    !exact_uint(cJSON_GetArrayItem(j, 1), &e))
		return gfn__fail(GFN_EINVAL,
		                 "tensor '%s': data_offsets is not two "
		                 "non-negative integers",
		                 t->name);
	if (b > e || e > data_size)
		return gfn__fail(
		        GFN_ERANGE,
		        "tensor '%s': data_offsets [%llu, %llu] outside "
		        "the %zu-byte data section",
		        t->name, (unsigned long long)b, (unsigned long long)e,
		        data_size);
	if (e - b != t->nbytes)
		return gfn__fail(
		        GFN_ERANGE,
		        "tensor '%s': %llu bytes at data_offsets but its "
		        "shape needs %zu",
		        t->name, (unsigned long long)(e - b), t->nbytes);
	t->offset = (size_t)b;
	return GFN_OK;
}

static gfn_status parse_entry(const cJSON *j, size_t data_size,
                              gfn_st_tensor *t)
{
	gfn_status s;
	size_t len = strlen(j->string);

	if (len == 0 || len > GFN_ST_MAX_NAME)
		return gfn__fail(GFN_EINVAL,
		                 "a tensor name has %zu bytes "
		                 "(1..%d allowed)",
		                 len, GFN_ST_MAX_NAME);
	t->name = strdup(j->string);
	if (!t->name)
		return gfn__fail(GFN_ENOMEM, "no memory for a tensor name");
	if (!cJSON_IsObject(j))
		return gfn__fail(GFN_EINVAL, "tensor '%s' is not an object",
		                 t->name);
	s = parse_dtype(cJSON_GetObjectItemCaseSensitive(j, "dtype"), t->name,
	                &t->dtype);
	if (s == GFN_OK)
		s = parse_shape(cJSON_GetObjectItemCaseSensitive(j, "shape"),
		                t);
	if (s == GFN_OK)
		s = parse_offsets(
		        cJSON_GetObjectItemCaseSensitive(j, "data_offsets"),
		        data_size, t);
	return s;
}

static int by_offset(const void *a, const void *b)
{
	const gfn_st_tensor *x = *(const gfn_st_tensor *const *)a;
	const gfn_st_tensor *y = *(const gfn_st_tensor *const *)b;

	return (x->offset > y->offset) - (x->offset < y->offset);
}

static int by_name(const void *a, const void *b)
{
	const gfn_st_tensor *x = *(const gfn_st_tensor *const *)a;
	const gfn_st_tensor *y = *(const gfn_st_tensor *const *)b;

	return strcmp(x->name, y->name);
}

/* No two tensors share bytes or a name (cJSON keeps duplicate keys). */
static gfn_status check_disjoint(const gfn_st_file *f)
{
	const gfn_st_tensor **v;
	gfn_status s = GFN_OK;

	if (f->n < 2)
		return GFN_OK;
	v = malloc(f->n * sizeof *v);
	if (!v)
		return gfn__fail(GFN_ENOMEM, "no memory to check offsets");
	for (size_t i = 0; i < f->n; i++)
		v[i] = &f->tensors[i];
	qsort(v, f->n, sizeof *v, by_offset);
	for (size_t i = 1; i < f->n && s == GFN_OK; i++)
		if (v[i]->offset < v[i - 1]->offset + v[i - 1]->nbytes)
			s = gfn__fail(GFN_ERANGE,
			              "tensors '%s' and '%s' overlap",
			              v[i - 1]->name, v[i]->name);
	qsort(v, f->n, sizeof *v, by_name);
	for (size_t i = 1; i < f->n && s == GFN_OK; i++)
		if (!strcmp(v[i]->name, v[i - 1]->name))
			s = gfn__fail(GFN_EINVAL, "tensor '%s' appears twice",
			              v[i]->name);
	free(v);
	return s;
}

/* ---- parse, open, close -------------------------------------------------- */

static gfn_status read_header_len(const unsigned char *p, size_t len,
                                  uint64_t *hlen)
{
	uint64_t h = 0;

	if (len < 8)
		return gfn__fail(GFN_ERANGE,
		                 "%zu bytes: shorter than the "
		                 "8-byte header length",
		                 len);
	for (int i = 7; i >= 0; i--)
		h = h << 8 | p[i];
	if (h > GFN_ST_MAX_HEADER)
		return gfn__fail(GFN_ERANGE,
		                 "header length %llu over the "
		                 "limit %llu",
		                 (unsigned long long)h,
		                 (unsigned long long)GFN_ST_MAX_HEADER);
	if (h > len - 8)
		return gfn__fail(GFN_ERANGE,
		                 "header length %llu but only %zu "
		                 "bytes follow",
		                 (unsigned long long)h, len - 8);
	if (h < 2 || p[8] != '{')
		return gfn__fail(GFN_EINVAL, "header is not a JSON object");
	*hlen = h;
	return GFN_OK;
}

/* The rest of the header after the JSON may only be padding spaces. */
static gfn_status check_tail(const char *end, const char *stop)
{
	for (; end < stop; end++)
		if (*end != ' ' && *end != '\n' && *end != '\t' && *end != '\r')
			return gfn__fail(
			        GFN_EINVAL,
			        "bytes after the header's JSON object");
	return GFN_OK;
}

static gfn_status parse_entries(const cJSON *root, gfn_st_file *f)
{
	const cJSON *j;
	size_t n = 0;
	gfn_status s;

	cJSON_ArrayForEach(j, root) n++;
	f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
	if (!f->tensors)
		return gfn__fail(GFN_ENOMEM, "no memory for %zu tensors", n);
	cJSON_ArrayForEach(j, root)
	{
		if (!strcmp(j->string, "__metadata__")) {
			if (!cJSON_IsObject(j))
				return gfn__fail(GFN_EINVAL, "__metadata__ is "
				                             "not an object");
			continue;
		}
		s = parse_entry(j, f->data_size, &f->tensors[f->n++]);
		if (s != GFN_OK)
			return s;
	}
	return check_disjoint(f);
}

gfn_status gfn__st_parse(const void *buf, size_t len, gfn_st_file *f)
{
	const unsigned char *p = buf;
	const char *end = NULL, *json;
	uint64_t hlen = 0;
	cJSON *root;
	gfn_status s;

	memset(f, 0, sizeof *f);
	if (!buf && len)
		return gfn__fail(GFN_EINVAL, "no buffer");
	s = read_header_len(p, len, &hlen);
	if (s != GFN_OK)
		return s;
	json = (const char *)p + 8;
	root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return gfn__fail(GFN_EINVAL, "header is not a JSON object");
	}
	f->data = p + 8 + hlen;
	f->data_size = len - 8 - (size_t)hlen;
	s = check_tail(end, json + hlen);
	if (s == GFN_OK)
		s = parse_entries(root, f);
	cJSON_Delete(root);
	if (s != GFN_OK)
		gfn__st_close(f);
	return s;
}

static gfn_status read_all(FILE *fp, const char *path, unsigned char **buf,
                           size_t *len)
{
	struct stat st;
	long end;

	/* A directory opens too (a manifest may name "." or ".."), and its
	   "size" from ftell is LONG_MAX: only a regular file is read. */
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode))
		return gfn__fail(GFN_EINVAL, "%s is not a regular file", path);
	if (fseek(fp, 0, SEEK_END) != 0 || (end = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0)
		return gfn__fail(GFN_ESYS, "%s: cannot seek: %s", path,
		                 strerror(errno));
	*buf = malloc(end ? (size_t)end : 1);
	if (!*buf)
		return gfn__fail(GFN_ENOMEM, "%s: no memory for %ld bytes",
		                 path, end);
	*len = fread(*buf, 1, (size_t)end, fp);
	if (*len != (size_t)end) {
		free(*buf);
		*buf = NULL;
		return gfn__fail(GFN_ESYS, "%s: short read", path);
	}
	return GFN_OK;
}

gfn_status gfn__st_open(const char *path, gfn_st_file *f)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	FILE *fp;
	gfn_status s;

	memset(f, 0, sizeof *f);
	fp = fopen(path, "rb");
	if (!fp)
		return gfn__fail(GFN_ENOENT, "%s: %s", path, strerror(errno));
	s = read_all(fp, path, &buf, &len);
	fclose(fp);
	if (s != GFN_OK)
		return s;
	s = gfn__st_parse(buf, len, f);
	if (s != GFN_OK) {
		free(buf);
		return s;
	}
	f->owned = buf;
	return GFN_OK;
}

void gfn__st_close(gfn_st_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; f->tensors && i < f->n; i++)
		free(f->tensors[i].name);
	free(f->tensors);
	free(f->owned);
	memset(f, 0, sizeof *f);
}

const gfn_st_tensor *gfn__st_find(const gfn_st_file *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->tensors[i].name, name))
			return &f->tensors[i];
	return NULL;
}

/* ---- reading ------------------------------------------------------------- */

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

void gfn__st_read_f32(const gfn_st_file *f, const gfn_st_tensor *t, float *dst)
{
	const unsigned char *p = f->data + t->offset;

	/* The data section has no alignment guarantee: copy byte-wise. The
	   hosts gfn runs on are little-endian, like the format. */
	if (t->dtype == GFN_F32) {
		memcpy(dst, p, t->nbytes);
		return;
	}
	for (size_t i = 0; i < t->count; i++, p += 2)
		dst[i] = t->dtype == GFN_F16 ? gfn__f16_to_f32(le16(p))
		                             : gfn__bf16_to_f32(le16(p));
}
