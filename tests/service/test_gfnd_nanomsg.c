/*
 * test_gfnd_nanomsg.c - interoperability: a plain libnanomsg REQ socket
 * (no NNG, no gfn client) speaks the documented protocol to a real gfnd:
 * hello, put, get, and an error reply for an unknown op.
 */
#include "svc_util.h"

#include <msgpack.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <signal.h>
#include <string.h>

static svc_daemon D;

/* The value under key in map m, or NULL. */
static const msgpack_object *field(const msgpack_object *m, const char *key)
{
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == strlen(key) &&
		    !memcmp(kv->key.via.str.ptr, key, strlen(key)))
			return &kv->val;
	}
	return NULL;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/*
 * Send sbuf, receive the reply into und; returns the reply's status.
 * msgpack-c points into the bytes it decoded, so the reply is kept in
 * reply_buf until the next round trip.
 */
static int64_t roundtrip(int s, msgpack_sbuffer *sb, msgpack_unpacked *und)
{
	static char reply_buf[1 << 16];
	void *buf = NULL;
	size_t off = 0;
	int n;
	const msgpack_object *st;

	ASSERT_EQ(nn_send(s, sb->data, sb->size, 0), (int)sb->size);
	n = nn_recv(s, &buf, NN_MSG, 0);
	ASSERT(n > 0 && (size_t)n <= sizeof reply_buf);
	memcpy(reply_buf, buf, (size_t)n);
	nn_freemsg(buf);
	msgpack_unpacked_init(und);
	ASSERT_EQ(msgpack_unpack_next(und, reply_buf, (size_t)n, &off),
	          MSGPACK_UNPACK_SUCCESS);
	ASSERT_EQ(und->data.type, MSGPACK_OBJECT_MAP);
	st = field(&und->data, "status");
	ASSERT_NOT_NULL(st);
	return st->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
	               ? st->via.i64
	               : (int64_t)st->via.u64;
}

static void begin(msgpack_sbuffer *sb, msgpack_packer *pk, const char *op,
                  unsigned extra)
{
	msgpack_sbuffer_clear(sb);
	msgpack_pack_map(pk, 2 + extra);
	pack_str(pk, "v");
	msgpack_pack_uint8(pk, 1);
	pack_str(pk, "op");
	pack_str(pk, op);
}

static void test_nanomsg_req(void)
{
	int s = nn_socket(AF_SP, NN_REQ), tmo = 10000;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked und;
	const float x[3] = {1.5f, -2, 8};

	ASSERT(s >= 0);
	nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof tmo);
	ASSERT(nn_connect(s, D.url) >= 0);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

	begin(&sb, &pk, "hello", 0);
	ASSERT_EQ(roundtrip(s, &sb, &und), 0);
	const msgpack_object *srv = field(&und.data, "server");
	ASSERT(srv && srv->via.str.size == 4 &&
	       !memcmp(srv->via.str.ptr, "gfnd", 4));
	msgpack_unpacked_destroy(&und);

	begin(&sb, &pk, "put", 3);
	pack_str(&pk, "dtype");
	msgpack_pack_uint8(&pk, GFN_F32);
	pack_str(&pk, "shape");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_uint8(&pk, 3);
	pack_str(&pk, "data");
	msgpack_pack_bin(&pk, sizeof x);
	msgpack_pack_bin_body(&pk, x, sizeof x);
	ASSERT_EQ(roundtrip(s, &sb, &und), 0);
	const msgpack_object *obj = field(&und.data, "obj");
	ASSERT(obj && obj->type == MSGPACK_OBJECT_ARRAY);
	uint64_t hi = obj->via.array.ptr[0].via.u64;
	uint64_t lo = obj->via.array.ptr[1].via.u64;
	msgpack_unpacked_destroy(&und);

	begin(&sb, &pk, "get", 1);
	pack_str(&pk, "obj");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint64(&pk, hi);
	msgpack_pack_uint64(&pk, lo);
	ASSERT_EQ(roundtrip(s, &sb, &und), 0);
	const msgpack_object *data = field(&und.data, "data");
	ASSERT(data && data->type == MSGPACK_OBJECT_BIN);
	ASSERT_EQ(data->via.bin.size, sizeof x);
	ASSERT_EQ(memcmp(data->via.bin.ptr, x, sizeof x), 0);
	msgpack_unpacked_destroy(&und);

	begin(&sb, &pk, "no-such-op", 0);
	ASSERT_EQ(roundtrip(s, &sb, &und), GFN_ENOTSUP);
	msgpack_unpacked_destroy(&und);

	msgpack_sbuffer_destroy(&sb);
	nn_close(s);
}

int main(void)
{
	svc_start(&D, NULL);
	TEST_RUN(test_nanomsg_req);
	ASSERT_EQ(svc_stop(&D, SIGTERM), 0);
	svc_cleanup(&D);
	return 0;
}
