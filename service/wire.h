/*
 * wire.h - the gfnd wire protocol, shared by the daemon and the client.
 *
 * Every message is one msgpack map (docs/protocol.md). A request names its
 * operation with "op" and the protocol version with "v"; a reply repeats
 * both and adds "status" (a gfn_status) and "detail" (words for a person).
 * These helpers pack fields straight into an nng message, and look fields
 * up in a decoded map with their types checked, so a malformed message is
 * a GFN_EINVAL with a detail, never a crash.
 */
#ifndef GFN_SERVICE_WIRE_H
#define GFN_SERVICE_WIRE_H

#include <gfn/gfn.h>

#include <msgpack.h>
#include <nng/nng.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GFN_WIRE_VERSION 1 /* the one protocol version this build speaks */
#define GFN_WIRE_DETAIL_MAX 1024 /* bytes of a detail message kept */

/* A message being written: msgpack packed into an nng message. */
typedef struct wire_out {
	msgpack_packer pk; /* packs into msg */
	nng_msg *msg;      /* owned until sent or freed */
	int err;           /* first nng error while appending, 0 if none */
} wire_out;

/* A decoded message: the top-level map, valid while in and und live. */
typedef struct wire_in {
	msgpack_unpacked und;       /* owns the decoded objects */
	const msgpack_object *root; /* the map; NULL until decoded */
} wire_in;

/* Start a message; *w owns a new nng message. 0 or an nng error. */
int wire_out_init(wire_out *w);
/* Free the message if it was not handed to nng. */
void wire_out_fini(wire_out *w);

/* Keys and values; each appends to w->msg (errors collect in w->err). */
void wire_key(wire_out *w, const char *key);
void wire_str(wire_out *w, const char *s);
void wire_kstr(wire_out *w, const char *key, const char *s);
void wire_ku64(wire_out *w, const char *key, uint64_t v);
void wire_ki64(wire_out *w, const char *key, int64_t v);
void wire_kbin(wire_out *w, const char *key, const void *p, size_t n);
void wire_obj(wire_out *w, gfn_object o);
void wire_kobj(wire_out *w, const char *key, gfn_object o);

/*
 * Decode buf (len bytes) as one msgpack map. GFN_EINVAL with a detail in
 * err (GFN_WIRE_DETAIL_MAX bytes) when it is not exactly one map.
 * wire_in_fini must be called either way.
 */
gfn_status wire_in_decode(wire_in *in, const void *buf, size_t len, char *err);
void wire_in_fini(wire_in *in);

/* The value of key in map m, or NULL when absent. */
const msgpack_object *wire_find(const msgpack_object *m, const char *key);

/*
 * Typed lookups: GFN_OK and the value; GFN_ENOENT when absent (with
 * *out untouched, so a default set before stands); GFN_EINVAL when the
 * value has the wrong type. err names the key (GFN_WIRE_DETAIL_MAX).
 */
gfn_status wire_get_u64(const msgpack_object *m, const char *key, uint64_t *out,
                        char *err);
gfn_status wire_get_i64(const msgpack_object *m, const char *key, int64_t *out,
                        char *err);
gfn_status wire_get_f64(const msgpack_object *m, const char *key, double *out,
                        char *err);
/* A string, not NUL-terminated: *p points into the decoded message. */
gfn_status wire_get_str(const msgpack_object *m, const char *key,
                        const char **p, size_t *n, char *err);
gfn_status wire_get_bin(const msgpack_object *m, const char *key,
                        const void **p, size_t *n, char *err);
gfn_status wire_get_array(const msgpack_object *m, const char *key,
                          const msgpack_object_array **out, char *err);
/* An object id: [hi, lo] as two unsigned integers. */
gfn_status wire_as_obj(const msgpack_object *v, gfn_object *out);
gfn_status wire_get_obj(const msgpack_object *m, const char *key,
                        gfn_object *out, char *err);
/* An integer value of any sign that fits int64. */
gfn_status wire_as_i64(const msgpack_object *v, int64_t *out);
/* A number (integer or float) as a double. */
gfn_status wire_as_f64(const msgpack_object *v, double *out);

/* Copy a msgpack string into dst (cap bytes, NUL-terminated); 0 when it
   does not fit or is not a string. */
bool wire_str_copy(const msgpack_object *v, char *dst, size_t cap);

#endif /* GFN_SERVICE_WIRE_H */
