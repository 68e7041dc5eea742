/*
 * wire.c - msgpack in and out of nng messages (see wire.h).
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>

/* msgpack's write callback: append to the nng message, remember errors. */
static int append_cb(void *data, const char *buf, size_t len)
{
	wire_out *w = data;
	int rv;

	if (w->err)
		return -1;
	rv = nng_msg_append(w->msg, buf, len);
	if (rv != 0) {
		w->err = rv;
		return -1;
	}
	return 0;
}

int wire_out_init(wire_out *w)
{
	int rv = nng_msg_alloc(&w->msg, 0);

	w->err = rv;
	if (rv != 0) {
		w->msg = NULL;
		return rv;
	}
	msgpack_packer_init(&w->pk, w, append_cb);
	return 0;
}

void wire_out_fini(wire_out *w)
{
	if (w->msg)
		nng_msg_free(w->msg);
	w->msg = NULL;
}

void wire_str(wire_out *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	msgpack_pack_str(&w->pk, n);
	msgpack_pack_str_body(&w->pk, s ? s : "", n);
}

void wire_key(wire_out *w, const char *key)
{
	wire_str(w, key);
}

void wire_kstr(wire_out *w, const char *key, const char *s)
{
	wire_key(w, key);
	wire_str(w, s);
}

void wire_ku64(wire_out *w, const char *key, uint64_t v)
{
	wire_key(w, key);
	msgpack_pack_uint64(&w->pk, v);
}

void wire_ki64(wire_out *w, const char *key, int64_t v)
{
	wire_key(w, key);
	msgpack_pack_int64(&w->pk, v);
}

void wire_kbin(wire_out *w, const char *key, const void *p, size_t n)
{
	wire_key(w, key);
	msgpack_pack_bin(&w->pk, n);
	msgpack_pack_bin_body(&w->pk, n ? p : "", n);
}

void wire_obj(wire_out *w, gfn_object o)
{
	msgpack_pack_array(&w->pk, 2);
	msgpack_pack_uint64(&w->pk, o.hi);
	msgpack_pack_uint64(&w->pk, o.lo);
}

void wire_kobj(wire_out *w, const char *key, gfn_object o)
{
	wire_key(w, key);
	wire_obj(w, o);
}

/*
 * Header bytes, payload bytes and child items of the msgpack item at p.
 * -1 for the one byte msgpack never uses (0xc1) or a header cut short.
 */
static int item_head(const uint8_t *p, size_t left, size_t *head,
                     uint64_t *payload, uint64_t *kids)
{
	static const uint8_t fixed[] = {
	        [0xca] = 5, [0xcb] = 9, [0xcc] = 2, [0xcd] = 3,  [0xce] = 5,
	        [0xcf] = 9, [0xd0] = 2, [0xd1] = 3, [0xd2] = 5,  [0xd3] = 9,
	        [0xd4] = 3, [0xd5] = 4, [0xd6] = 6, [0xd7] = 10, [0xd8] = 18,
	};
	uint8_t b = p[0];
	size_t lenb = 0;
	uint64_t n = 0;

	*head = 1, *payload = 0, *kids = 0;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return 0;
	if (b <= 0x8f)
		return *kids = 2u * (b & 0xf), 0;
	if (b <= 0x9f)
		return *kids = b & 0xf, 0;
	if (b <= 0xbf)
		return *payload = b & 0x1f, 0;
	if (b < sizeof fixed && fixed[b])
		return *head = fixed[b], 0;
	switch (b) {
	case 0xc4:
	case 0xc7:
	case 0xd9:
		lenb = 1;
		break;
	case 0xc5:
	case 0xc8:
	case 0xda:
	case 0xdc:
	case 0xde:
		lenb = 2;
		break;
	case 0xc6:
	case 0xc9:
	case 0xdb:
	case 0xdd:
	case 0xdf:
		lenb = 4;
		break;
	default:
		return -1; /* 0xc1 */
	}
	if (left < 1 + lenb)
		return -1;
	for (size_t i = 0; i < lenb; i++)
		n = n << 8 | p[1 + i];
	*head = 1 + lenb + (b >= 0xc7 && b <= 0xc9); /* ext: type byte */
	if (b == 0xdc || b == 0xdd)
		*kids = n;
	else if (b == 0xde || b == 0xdf)
		*kids = 2 * n;
	else
		*payload = n;
	return 0;
}

/*
 * msgpack-c allocates a container's elements from the count in its
 * header before reading them, so a 5-byte message could ask for 100 GiB.
 * Every item takes at least one byte: a count larger than the bytes left
 * is a lie, refused here before the library sees it.
 */
static int plausible(const uint8_t *p, size_t len)
{
	uint64_t pending = 1, payload, kids;
	size_t pos = 0, head;

	while (pending > 0) {
		if (pos >= len ||
		    item_head(p + pos, len - pos, &head, &payload, &kids) != 0)
			return 0;
		if (head > len - pos || payload > len - pos - head)
			return 0;
		pos += head + payload;
		pending += kids - 1;
		if (pending > len - pos)
			return 0;
	}
	return 1;
}

gfn_status wire_in_decode(wire_in *in, const void *buf, size_t len, char *err)
{
	size_t off = 0;
	msgpack_unpack_return r;

	msgpack_unpacked_init(&in->und);
	in->root = NULL;
	if (!plausible(buf, len)) {
		snprintf(err, GFN_WIRE_DETAIL_MAX,
		         "message of %zu bytes is not one well-formed msgpack "
		         "item (cut short, or counts larger than its size)",
		         len);
		return GFN_EINVAL;
	}
	r = msgpack_unpack_next(&in->und, buf, len, &off);
	if (r != MSGPACK_UNPACK_SUCCESS) {
		snprintf(err, GFN_WIRE_DETAIL_MAX,
		         "message of %zu bytes is not valid msgpack (%d)", len,
		         (int)r);
		return GFN_EINVAL;
	}
	if (off != len) {
		snprintf(err, GFN_WIRE_DETAIL_MAX,
		         "%zu bytes of trailing garbage after the message",
		         len - off);
		return GFN_EINVAL;
	}
	if (in->und.data.type != MSGPACK_OBJECT_MAP) {
		snprintf(err, GFN_WIRE_DETAIL_MAX,
		         "a message must be a msgpack map, not type %d",
		         (int)in->und.data.type);
		return GFN_EINVAL;
	}
	in->root = &in->und.data;
	return GFN_OK;
}

void wire_in_fini(wire_in *in)
{
	msgpack_unpacked_destroy(&in->und);
	in->root = NULL;
}

const msgpack_object *wire_find(const msgpack_object *m, const char *key)
{
	size_t klen = strlen(key);

	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
		    memcmp(k->via.str.ptr, key, klen) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* Look key up; GFN_ENOENT when absent. */
static gfn_status lookup(const msgpack_object *m, const char *key,
                         const msgpack_object **v)
{
	*v = wire_find(m, key);
	return *v ? GFN_OK : GFN_ENOENT;
}

static gfn_status bad_type(const char *key, const char *want, char *err)
{
	snprintf(err, GFN_WIRE_DETAIL_MAX, "field \"%s\" must be %s", key,
	         want);
	return GFN_EINVAL;
}

gfn_status wire_as_i64(const msgpack_object *v, int64_t *out)
{
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (v->via.u64 > (uint64_t)INT64_MAX)
			return GFN_EINVAL;
		*out = (int64_t)v->via.u64;
		return GFN_OK;
	}
	if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = v->via.i64;
		return GFN_OK;
	}
	return GFN_EINVAL;
}

gfn_status wire_as_f64(const msgpack_object *v, double *out)
{
	int64_t i;

	if (v->type == MSGPACK_OBJECT_FLOAT32 ||
	    v->type == MSGPACK_OBJECT_FLOAT64) {
		*out = v->via.f64;
		return GFN_OK;
	}
	if (wire_as_i64(v, &i) != GFN_OK)
		return GFN_EINVAL;
	*out = (double)i;
	return GFN_OK;
}

gfn_status wire_get_u64(const msgpack_object *m, const char *key, uint64_t *out,
                        char *err)
{
	const msgpack_object *v;

	if (lookup(m, key, &v) != GFN_OK)
		return GFN_ENOENT;
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return bad_type(key, "an unsigned integer", err);
	*out = v->via.u64;
	return GFN_OK;
}

gfn_status wire_get_i64(const msgpack_object *m, const char *key, int64_t *out,
                        char *err)
{
	const msgpack_object *v;

	if (lookup(m, key, &v) != GFN_OK)
		return GFN_ENOENT;
	if (wire_as_i64(v, out) != GFN_OK)
		return bad_type(key, "an integer", err);
	return GFN_OK;
}

gfn_status wire_get_f64(const msgpack_object *m, const char *key, double *out,
                        char *err)
{
	const msgpack_object *v;

	if (lookup(m, key, &v) != GFN_OK)
		return GFN_ENOENT;
	if (wire_as_f64(v, out) != GFN_OK)
		return bad_type(key, "a number", err);
	return GFN_OK;
}

gfn_status wire_get_str(const msgpack_object *m, const char *key,
                        const char **p, size_t *n, char *err)
{
	const msgpack_object *v;

	if (lookup(m, key, &v) != GFN_OK)
		return GFN_ENOENT;
	if (v->type != MSGPACK_OBJECT_STR)
		return bad_type(key, "a string", err);
	*p = v->via.str.ptr;
	*n = v->via.str.size;
	return GFN_OK;
}

gfn_status wire_get_bin(const msgpack_object *m, const char *key,
                        const void **p, size_t *n, char *err)
{
	const msgpack_object *v;

	if (lookup(m, key, &v) != GFN_OK)
		return GFN_ENOENT;
	if (v->type != MSGPACK_OBJECT_BIN)
		return bad_type(key, "binary", err);
	*p = v->via.bin.ptr;
	*n = v->via.bin.size;
	return GFN_OK;
}

gfn_status wire_get_array(const msgpack_object *m, const char *key,
                          const msgpack_object_array **out, char *err)
{
	const msgpack_object *v;

	if (lookup(m, key, &v) != GFN_OK)
		return GFN_ENOENT;
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return bad_type(key, "an array", err);
	*out = &v->via.array;
	return GFN_OK;
}

gfn_status wire_as_obj(const msgpack_object *v, gfn_object *out)
{
	const msgpack_object *e;

	if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != 2)
		return GFN_EINVAL;
	e = v->via.array.ptr;
	if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return GFN_EINVAL;
	out->hi = e[0].via.u64;
	out->lo = e[1].via.u64;
	return GFN_OK;
}

gfn_status wire_get_obj(const msgpack_object *m, const char *key,
                        gfn_object *out, char *err)
{
	const msgpack_object *v;

	if (lookup(m, key, &v) != GFN_OK)
		return GFN_ENOENT;
	if (wire_as_obj(v, out) != GFN_OK)
		return bad_type(key, "an object id [hi, lo]", err);
	return GFN_OK;
}

bool wire_str_copy(const msgpack_object *v, char *dst, size_t cap)
{
	if (!v || v->type != MSGPACK_OBJECT_STR || v->via.str.size >= cap)
		return false;
	memcpy(dst, v->via.str.ptr, v->via.str.size);
	dst[v->via.str.size] = '\0';
	return true;
}
