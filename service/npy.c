/*
 * npy.c - see npy.h. The header is a Python dict literal; only the three
 * keys NumPy always writes are read, and anything unexpected (Fortran
 * order, big-endian, an unknown dtype) is refused with a reason.
 */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *descr; /* NumPy's type string */
	gfn_dtype dt;      /* gfn's */
} types[] = {
        {"<f4", GFN_F32}, {"<f8", GFN_F64}, {"<f2", GFN_F16}, {"|i1", GFN_I8},
        {"|u1", GFN_U8},  {"<i4", GFN_I32}, {"<i8", GFN_I64},
};

static int fail(char *err, const char *path, const char *why)
{
	snprintf(err, 256, "%s: %s", path, why);
	return -1;
}

/* The value text after 'key': in the header dict. */
static const char *dict_value(const char *h, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof pat, "'%s':", key);
	p = strstr(h, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return p;
}

static int parse_header(const char *h, npy_array *a)
{
	const char *d = dict_value(h, "descr"), *f, *s;
	char *end;

	f = dict_value(h, "fortran_order");
	s = dict_value(h, "shape");
	if (!d || !f || !s || strncmp(f, "False", 5) != 0 || *s != '(')
		return -1;
	a->dtype = GFN_DTYPE_INVALID;
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (strncmp(d + 1, types[i].descr, 3) == 0 && d[4] == d[0])
			a->dtype = types[i].dt;
	if (a->dtype == GFN_DTYPE_INVALID)
		return -1;
	a->ndim = 0;
	for (s++; *s != ')';) {
		long long v;

		while (*s == ' ' || *s == ',')
			s++;
		if (*s == ')')
			break;
		v = strtoll(s, &end, 10);
		if (end == s || v < 0 || a->ndim == GFN_MAX_DIMS)
			return -1;
		a->shape[a->ndim++] = v;
		s = end;
	}
	return 0;
}

static size_t tensor_bytes(const npy_array *a)
{
	size_t n = gfn_dtype_size(a->dtype);

	for (int i = 0; i < a->ndim; i++) {
		if (a->shape[i] && n > SIZE_MAX / (size_t)a->shape[i])
			return SIZE_MAX;
		n *= (size_t)a->shape[i];
	}
	return n;
}

/* Magic, version and header length. */
static int read_preamble(FILE *f, size_t *hlen)
{
	unsigned char pre[12];

	if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0)
		return -1;
	if (pre[6] == 1) {
		if (fread(pre + 8, 1, 2, f) != 2)
			return -1;
		*hlen = pre[8] | (size_t)pre[9] << 8;
	} else if (pre[6] == 2 || pre[6] == 3) {
		if (fread(pre + 8, 1, 4, f) != 4)
			return -1;
		*hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
		        (size_t)pre[11] << 24;
	} else {
		return -1;
	}
	return *hlen < 65536 ? 0 : -1;
}

int npy_read(const char *path, npy_array *a, char *err)
{
	FILE *f = fopen(path, "rb");
	char h[65536];
	size_t hlen;

	memset(a, 0, sizeof *a);
	if (!f)
		return fail(err, path, strerror(errno));
	if (read_preamble(f, &hlen) != 0 || fread(h, 1, hlen, f) != hlen) {
		fclose(f);
		return fail(err, path, "not a .npy file");
	}
	h[hlen] = '\0';
	if (parse_header(h, a) != 0) {
		fclose(f);
		return fail(err, path,
		            "unsupported .npy header (need C "
		            "order, little-endian f32/f64/f16/i8/"
		            "u8/i32/i64)");
	}
	a->nbytes = tensor_bytes(a);
	a->data = a->nbytes == SIZE_MAX ? NULL : malloc(a->nbytes + 1);
	if (!a->data || fread(a->data, 1, a->nbytes, f) != a->nbytes) {
		fclose(f);
		free(a->data);
		a->data = NULL;
		return fail(err, path, "data shorter than the header says");
	}
	fclose(f);
	return 0;
}

int npy_write(const char *path, const npy_array *a, char *err)
{
	const char *descr = NULL;
	char dict[512], shape[256] = "";
	size_t n, pad;
	FILE *f;

	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (types[i].dt == a->dtype)
			descr = types[i].descr;
	if (!descr)
		return fail(err, path, "dtype has no .npy equivalent");
	for (int i = 0; i < a->ndim; i++)
		snprintf(shape + strlen(shape), sizeof shape - strlen(shape),
		         "%lld,%s", (long long)a->shape[i],
		         i + 1 < a->ndim ? " " : "");
	n = (size_t)snprintf(dict, sizeof dict,
	                     "{'descr': '%s', 'fortran_order': False, "
	                     "'shape': (%s), }",
	                     descr, shape);
	/* The data starts on a 64-byte boundary; the header ends in \n. */
	pad = 64 - (10 + n + 1) % 64;
	if (!(f = fopen(path, "wb")))
		return fail(err, path, strerror(errno));
	unsigned short hl = (unsigned short)(n + pad + 1);
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(hl & 0xff, f);
	fputc(hl >> 8, f);
	fwrite(dict, 1, n, f);
	for (size_t i = 0; i < pad; i++)
		fputc(' ', f);
	fputc('\n', f);
	if (fwrite(a->data, 1, a->nbytes, f) != a->nbytes || fclose(f) != 0)
		return fail(err, path, "write failed");
	return 0;
}
