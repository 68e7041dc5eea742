/*
 * test_safetensors.c - the safetensors reader (kernels/safetensors.h):
 * well-formed files in each dtype read back exactly, every malformed
 * header or out-of-range length and offset is refused with its own status
 * and a detail, and corrupted copies of a valid file (bytes flipped,
 * lengths forged, truncated) never make it read out of bounds: under ASan
 * any stray read fails the suite.
 */
#include "test.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "kernels/safetensors.h"

/* A file image: 8-byte length, header text, data. */
typedef struct image {
	unsigned char *p; /* bytes */
	size_t len;       /* bytes used */
} image;

static image make(const char *header, const void *data, size_t dlen)
{
	size_t hl = strlen(header);
	image im = {malloc(8 + hl + dlen + 1), 8 + hl + dlen};

	ASSERT_NOT_NULL(im.p);
	for (int i = 0; i < 8; i++)
		im.p[i] = (unsigned char)((uint64_t)hl >> (8 * i));
	memcpy(im.p + 8, header, hl);
	if (dlen)
		memcpy(im.p + 8 + hl, data, dlen);
	return im;
}

/* Parse the header over dlen bytes of zero data; expect want. */
static void expect(const char *header, size_t dlen, gfn_status want)
{
	unsigned char zero[256] = {0};
	image im;
	gfn_st_file f;

	ASSERT_LE(dlen, sizeof zero);
	im = make(header, zero, dlen);
	if (want == GFN_OK) {
		ASSERT_OK(gfn__st_parse(im.p, im.len, &f));
		gfn__st_close(&f);
	} else {
		ASSERT_FAILS(gfn__st_parse(im.p, im.len, &f), want);
		ASSERT_EQ(f.n, 0);
		ASSERT_NULL(f.tensors);
	}
	free(im.p);
}

static void test_f32(void)
{
	float v[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-30f, 65504.0f}, out[6];
	const char *h = "{\"__metadata__\":{\"a\":\"b\"},"
	                "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
	                "\"data_offsets\":[0,24]}}   ";
	image im = make(h, v, sizeof v);
	const gfn_st_tensor *t;
	gfn_st_file f;

	ASSERT_OK(gfn__st_parse(im.p, im.len, &f));
	ASSERT_EQ(f.n, 1);
	t = gfn__st_find(&f, "w");
	ASSERT_NOT_NULL(t);
	ASSERT_NULL(gfn__st_find(&f, "x"));
	ASSERT_EQ(t->dtype, GFN_F32);
	ASSERT_EQ(t->ndim, 2);
	ASSERT_EQ(t->shape[0], 2);
	ASSERT_EQ(t->shape[1], 3);
	ASSERT_EQ(t->count, 6);
	gfn__st_read_f32(&f, t, out);
	ASSERT_EQ(memcmp(v, out, sizeof v), 0);
	gfn__st_close(&f);
	gfn__st_close(&f); /* a closed file closes again */
	free(im.p);
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

/* Half and bfloat16 patterns with their exact f32 values. */
static void test_f16_bf16(void)
{
	static const uint16_t h[] = {0x3c00, 0xc000, 0x7bff, 0x0001,
	                             0x03ff, 0x8000, 0x7c00, 0x3555};
	static const float hv[] = {1.0f,         -2.0f, 65504.0f, 5.9604645e-8f,
	                           6.097555e-5f, -0.0f, INFINITY, 0.33325195f};
	static const uint16_t b[] = {0x3f80, 0xc0a0, 0x7f80, 0x0001};
	static const float bv[] = {1.0f, -5.0f, INFINITY, 9.18355e-41f};
	unsigned char data[24];
	float out[8];
	const char *hd = "{\"h\":{\"dtype\":\"F16\",\"shape\":[8],"
	                 "\"data_offsets\":[0,16]},"
	                 "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],"
	                 "\"data_offsets\":[16,24]}}";
	gfn_st_file f;
	image im;

	for (int i = 0; i < 8; i++)
		put16(data + 2 * i, h[i]);
	for (int i = 0; i < 4; i++)
		put16(data + 16 + 2 * i, b[i]);
	im = make(hd, data, sizeof data);
	ASSERT_OK(gfn__st_parse(im.p, im.len, &f));
	gfn__st_read_f32(&f, gfn__st_find(&f, "h"), out);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(memcmp(&out[i], &hv[i], 4), 0);
	gfn__st_read_f32(&f, gfn__st_find(&f, "b"), out);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(memcmp(&out[i], &bv[i], 4), 0);
	ASSERT(isnan(gfn__f16_to_f32(0x7e00)));
	ASSERT(isnan(gfn__bf16_to_f32(0x7fc0)));
	gfn__st_close(&f);
	free(im.p);
}

static void test_empty_and_scalar(void)
{
	expect("{}", 0, GFN_OK);
	expect("{\"s\":{\"dtype\":\"F32\",\"shape\":[],"
	       "\"data_offsets\":[0,4]}}",
	       4, GFN_OK);
	expect("{\"z\":{\"dtype\":\"F16\",\"shape\":[0,5],"
	       "\"data_offsets\":[0,0]}}",
	       0, GFN_OK);
}

/* Lengths: too short, forged header length, over the limit. */
static void test_bad_lengths(void)
{
	unsigned char b[16] = {0};
	gfn_st_file f;
	image im;

	ASSERT_FAILS(gfn__st_parse(b, 0, &f), GFN_ERANGE);
	ASSERT_FAILS(gfn__st_parse(b, 7, &f), GFN_ERANGE);
	b[0] = 9; /* 9 header bytes, 8 present */
	ASSERT_FAILS(gfn__st_parse(b, 16, &f), GFN_ERANGE);
	memset(b, 0xff, 8); /* 2^64 - 1 */
	ASSERT_FAILS(gfn__st_parse(b, 16, &f), GFN_ERANGE);
	im = make("{}", NULL, 0);
	im.p[3] = 1; /* 16 MiB + 2: over GFN_ST_MAX_HEADER */
	ASSERT_FAILS(gfn__st_parse(im.p, im.len, &f), GFN_ERANGE);
	free(im.p);
	memset(b, 0, sizeof b);
	b[0] = 1; /* one header byte: not an object */
	b[8] = '{';
	ASSERT_FAILS(gfn__st_parse(b, 9, &f), GFN_EINVAL);
}

static void test_bad_json(void)
{
	expect("", 0, GFN_EINVAL);
	expect("[]", 0, GFN_EINVAL);
	expect("{", 0, GFN_EINVAL);
	expect("{\"a\":1", 0, GFN_EINVAL);
	expect("{} x", 0, GFN_EINVAL);
	expect("{\"a\":1}", 0, GFN_EINVAL);
	expect("{\"__metadata__\":3}", 0, GFN_EINVAL);
	expect("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, GFN_EINVAL);
	expect("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
	       GFN_EINVAL);
	expect("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],"
	       "\"data_offsets\":[0,8]}}",
	       8, GFN_ENOTSUP);
	expect("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],"
	       "\"data_offsets\":[0,4]}}",
	       4, GFN_ENOTSUP);
	expect("{\"\":{\"dtype\":\"F32\",\"shape\":[1],"
	       "\"data_offsets\":[0,4]}}",
	       4, GFN_EINVAL);
}

static void test_bad_shapes(void)
{
	static const char *const bad[] = {
	        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,"
	        "4]}}",
	        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,"
	        "4]}}",
	        "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":["
	        "0,4]}}",
	        "{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}"
	        "}",
	        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":["
	        "0,4]}}",
	        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
	        "\"data_offsets\":[0,4]}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect(bad[i], 4, GFN_EINVAL);
	/* Each extent is fine, their product overflows size_t. */
	expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
	       "\"data_offsets\":[0,4]}}",
	       4, GFN_ERANGE);
	expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,"
	       "4503599627370496,0],\"data_offsets\":[0,0]}}",
	       4, GFN_OK);
}

static void test_bad_offsets(void)
{
	const char *f = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
	                "\"data_offsets\":%s}}";
	static const struct {
		const char *off; /* the data_offsets value */
		gfn_status want; /* over 8 bytes of data */
	} cases[] = {
	        {"[0,8]", GFN_OK},
	        {"[0,4]", GFN_ERANGE},
	        {"[4,12]", GFN_ERANGE},
	        {"[8,0]", GFN_ERANGE},
	        {"[0]", GFN_EINVAL},
	        {"[0,8,9]", GFN_EINVAL},
	        {"[-8,0]", GFN_EINVAL},
	        {"[0,8.5]", GFN_EINVAL},
	        {"\"0,8\"", GFN_EINVAL},
	        {"[1e300,1e300]", GFN_EINVAL},
	        {"[18446744073709551608,8]", GFN_EINVAL},
	};
	char h[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(h, sizeof h, f, cases[i].off);
		expect(h, 8, cases[i].want);
	}
}

static void test_overlap_duplicate(void)
{
	expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
	       ","
	       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}"
	       "}",
	       12, GFN_ERANGE);
	expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"
	       ","
	       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}"
	       "}",
	       8, GFN_EINVAL);
	/* Empty tensors share an offset without overlapping. */
	expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}"
	       ","
	       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"
	       "}",
	       4, GFN_OK);
}

static void test_open(void)
{
	gfn_st_file f;
	char path[] = "/tmp/gfn-st-XXXXXX";
	int fd = mkstemp(path);
	float one = 1.0f;
	image im = make("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
	                "\"data_offsets\":[0,4]}}",
	                &one, 4);
	FILE *fp;

	ASSERT_GE(fd, 0);
	fp = fdopen(fd, "wb");
	ASSERT_NOT_NULL(fp);
	ASSERT_EQ(fwrite(im.p, 1, im.len, fp), im.len);
	fclose(fp);
	ASSERT_OK(gfn__st_open(path, &f));
	ASSERT_EQ(f.n, 1);
	gfn__st_close(&f);
	ASSERT_EQ(truncate(path, (off_t)im.len - 1), 0);
	ASSERT_FAILS(gfn__st_open(path, &f), GFN_ERANGE);
	unlink(path);
	ASSERT_FAILS(gfn__st_open(path, &f), GFN_ENOENT);
	free(im.p);
}

/* Parse a corrupted image; when it parses, read every tensor. */
static void try_parse(const unsigned char *p, size_t len)
{
	gfn_st_file f;

	if (gfn__st_parse(p, len, &f) != GFN_OK)
		return;
	for (size_t i = 0; i < f.n; i++) {
		float *dst = malloc(f.tensors[i].count * sizeof(float) + 1);

		ASSERT_NOT_NULL(dst);
		ASSERT_LE(f.tensors[i].offset + f.tensors[i].nbytes,
		          f.data_size);
		gfn__st_read_f32(&f, &f.tensors[i], dst);
		free(dst);
	}
	gfn__st_close(&f);
}

/*
 * Fuzz-style: a valid three-tensor file, then many copies with random
 * bytes flipped (in the header mostly, where the parser looks), a random
 * header length, or cut short. Each copy is in its own exact-size buffer
 * so ASan sees a read past its end.
 */
static void test_corrupted(void)
{
	unsigned char data[40] = {0};
	image im = make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],"
	                "\"data_offsets\":[0,16]},"
	                "\"b\":{\"dtype\":\"F16\",\"shape\":[4],"
	                "\"data_offsets\":[16,24]},"
	                "\"c\":{\"dtype\":\"BF16\",\"shape\":[8],"
	                "\"data_offsets\":[24,40]}}",
	                data, sizeof data);
	size_t iters = test_scaled(20000, 2000);
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	try_parse(im.p, im.len);
	for (size_t it = 0; it < iters; it++) {
		size_t len = im.len;
		unsigned char *c;

		if (it % 7 == 0)
			len = test_rand(&rng) % (im.len + 1);
		c = malloc(len ? len : 1);
		ASSERT_NOT_NULL(c);
		memcpy(c, im.p, len);
		for (int k = (int)(test_rand(&rng) % 4); k >= 0 && len; k--)
			c[test_rand(&rng) % len] ^=
			        (unsigned char)(1u << (test_rand(&rng) % 8));
		if (it % 11 == 0 && len >= 8) /* forge the length */
			c[test_rand(&rng) % 8] = (unsigned char)test_rand(&rng);
		if (it % 13 == 0 && len > 9) /* a digit for a digit */
			c[8 + test_rand(&rng) % (len - 8)] =
			        (unsigned char)('0' + test_rand(&rng) % 10);
		try_parse(c, len);
		free(c);
	}
	free(im.p);
}

int main(void)
{
	TEST_RUN(test_f32);
	TEST_RUN(test_f16_bf16);
	TEST_RUN(test_empty_and_scalar);
	TEST_RUN(test_bad_lengths);
	TEST_RUN(test_bad_json);
	TEST_RUN(test_bad_shapes);
	TEST_RUN(test_bad_offsets);
	TEST_RUN(test_overlap_duplicate);
	TEST_RUN(test_open);
	TEST_RUN(test_corrupted);
	return 0;
}
