/*
 * test_shm_stress - several client processes, each with several threads
 * on one shared handle, create, fill, seal, read and release objects
 * while the engine process does the same in process and runs
 * invocations, in a store small enough to evict all along. Every payload
 * is checksummed when it is read back; at the end every reference is
 * accounted for and the store is consistent.
 */
#include "test_shm_util.h"

#include <pthread.h>
#include <unistd.h>

#define PROCS 4    /* client processes */
#define THREADS 4  /* threads per client process */
#define SHARED 8   /* objects every client reads */
#define KEEP 8     /* objects a thread holds at once */
#define MAXN 16384 /* largest payload */

struct shared {
	gfn_object id[SHARED]; /* made by the engine for the clients' tenant */
	uint64_t hash[SHARED]; /* their checksums */
};

struct worker {
	gfn_store_client *c;    /* the process's one handle */
	const struct shared *s; /* objects to read */
	size_t iters;           /* rounds */
	int id;                 /* for the seeds */
};

struct kept {
	gfn_object id; /* an object this thread made */
	uint64_t hash; /* its checksum */
	size_t n;      /* its bytes */
};

/* Get o, check its checksum, give the reference back. */
static void verify(gfn_store_client *c, gfn_object o, size_t n, uint64_t h)
{
	gfn_object_view v;

	ASSERT_OK(gfn_store_client_get(c, o, &v));
	ASSERT_EQ(v.size, n);
	ASSERT_U64_EQ(shm_hash(v.data, v.size), h);
	ASSERT_OK(gfn_store_client_release(c, o));
}

/* Make one object: filled in place or by copy, checksummed, sealed. */
static struct kept make_one(gfn_store_client *c, uint64_t *rng,
                            unsigned char *buf)
{
	struct kept k = {.n = 1 + test_rand(rng) % MAXN};
	int64_t shape[1] = {(int64_t)k.n};
	void *p;
	size_t sz;

	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &k.id));
	if (test_rand(rng) & 1) {
		ASSERT_OK(gfn_store_client_map(c, k.id, &p, &sz));
		ASSERT_EQ(sz, k.n);
		shm_fill(p, k.n, test_rand(rng));
		k.hash = shm_hash(p, k.n);
	} else {
		shm_fill(buf, k.n, test_rand(rng));
		k.hash = shm_hash(buf, k.n);
		ASSERT_OK(gfn_store_client_write(c, k.id, 0, buf, k.n));
	}
	ASSERT_OK(gfn_store_client_seal(c, k.id));
	return k;
}

/*
 * Check k and let it go: deleted, or (odd sizes) left cached, so the
 * store fills up and evicts while everything else goes on. Deleted while
 * still referenced: once released it may be evicted at any moment.
 */
static void drop(gfn_store_client *c, const struct kept *k)
{
	verify(c, k->id, k->n, k->hash);
	if (!(k->n & 1))
		ASSERT_OK(gfn_store_client_delete(c, k->id));
	ASSERT_OK(gfn_store_client_release(c, k->id));
}

static void *client_thread(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = 0x51ed + (uint64_t)w->id * 7919u;
	unsigned char *buf = malloc(MAXN);
	struct kept keep[KEEP];
	int nkeep = 0;

	ASSERT_NOT_NULL(buf);
	for (size_t it = 0; it < w->iters; it++) {
		struct kept k = make_one(w->c, &rng, buf);
		int s = (int)(test_rand(&rng) % (SHARED - 1));

		verify(w->c, k.id, k.n, k.hash);
		verify(w->c, w->s->id[s], MAXN, w->s->hash[s]);
		/* The last shared object is never got by this process (the
		   handle is one client for all its threads): releasing it is
		   giving back a reference the client does not hold. */
		if (it % 16 == 0)
			ASSERT_FAILS(gfn_store_client_release(
			                     w->c, w->s->id[SHARED - 1]),
			             GFN_ESTATE);
		if (nkeep < KEEP) {
			keep[nkeep++] = k;
			continue;
		}
		s = (int)(test_rand(&rng) % KEEP);
		drop(w->c, &keep[s]);
		keep[s] = k;
	}
	while (nkeep)
		drop(w->c, &keep[--nkeep]);
	free(buf);
	return NULL;
}

/* argv: socket, iterations, then SHARED "id=hash" pairs. */
static int child_stress(int argc, char **argv)
{
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct shared s;
	gfn_store_client *c;

	ASSERT_EQ(argc, 2 + SHARED);
	for (int i = 0; i < SHARED; i++) {
		const char *eq = strchr(argv[2 + i], '=');

		ASSERT_NOT_NULL(eq);
		s.id[i] = shm_id_parse(argv[2 + i]);
		s.hash[i] = strtoull(eq + 1, NULL, 16);
	}
	ASSERT_OK(gfn_store_client_attach(argv[0], &c));
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){c, &s, (size_t)atol(argv[1]),
		                       (int)getpid() * THREADS + i};
		ASSERT_EQ(pthread_create(&th[i], NULL, client_thread, &w[i]),
		          0);
	}
	for (int i = 0; i < THREADS; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	gfn_store_client_detach(c);
	return 0;
}

/* ------------------------------------------------------------ engine side */

struct local {
	gfn_engine *e;    /* the engine */
	gfn_function fn;  /* vadd */
	atomic_int *stop; /* set when the clients are done */
	size_t rounds;    /* rounds done */
	int id;           /* seed */
};

/* In process: objects, and invocations on them, until stopped. */
static void *local_thread(void *arg)
{
	struct local *l = arg;
	float a[256], b[256];

	while (!atomic_load(l->stop)) {
		gfn_object in[2], out;
		gfn_invocation inv;
		gfn_object_view v;
		gfn_future f;

		for (int i = 0; i < 256; i++) {
			a[i] = (float)(i + l->id);
			b[i] = (float)(l->rounds % 1000);
		}
		in[0] = test_make_f32_1d(l->e, a, 256);
		in[1] = test_make_f32_1d(l->e, b, 256);
		inv = test_inv(l->fn, 2, in, 0, NULL);
		ASSERT_OK(gfn_invoke(l->e, &inv, &f));
		out = test_take_output(l->e, f);
		ASSERT_OK(gfn_object_get(l->e, out, &v));
		for (int i = 0; i < 256; i++)
			ASSERT_DBL_EQ(((const float *)v.data)[i], a[i] + b[i]);
		ASSERT_OK(gfn_object_release(l->e, out));
		test_drop(l->e, out);
		test_drop(l->e, in[0]);
		test_drop(l->e, in[1]);
		ASSERT_OK(gfn_future_release(l->e, f));
		l->rounds++;
		test_sleep_us(100); /* leave the cores to the clients too */
	}
	return NULL;
}

/* The shared objects, as the clients' tenant, and their "id=hash". */
static void make_shared(struct shm_env *env, struct shared *s,
                        char args[SHARED][64])
{
	uint32_t tenant = (uint32_t)getuid() + 1;
	int64_t shape[1] = {MAXN};
	gfn_store_loc loc;

	for (int i = 0; i < SHARED; i++) {
		ASSERT_OK(gfn_store_create_as(env->st, tenant, GFN_U8, 1, shape,
		                              &s->id[i], &loc));
		shm_fill(loc.data, MAXN, 1000u + (uint64_t)i);
		s->hash[i] = shm_hash(loc.data, MAXN);
		ASSERT_OK(gfn_object_seal(env->e, s->id[i]));
		shm_id_arg(s->id[i], args[i]);
		sprintf(args[i] + strlen(args[i]), "=%llx",
		        (unsigned long long)s->hash[i]);
	}
}

static void shm_stress_processes_and_threads(void)
{
	struct shm_env env;
	gfn_config cfg;
	struct shared s;
	char args[SHARED][64], iters[24];
	struct local loc[2];
	pthread_t th[2];
	pid_t pid[PROCS];
	gfn_store_stats s0;
	atomic_int stop = 0;
	gfn_object_view v;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.workers_per_device = 2;
	cfg.store_capacity = (size_t)4 << 20;
	cfg.segment_size = (size_t)512 << 10;
	shm_env_start(&env, &cfg);
	make_shared(&env, &s, args);
	s0 = shm_stats(&env);
	snprintf(iters, sizeof(iters), "%zu", test_scaled(1500, 150));
	for (int i = 0; i < 2; i++) {
		loc[i] = (struct local){
		        env.e, test_register_vadd(env.e, i ? "v1" : "v0"),
		        &stop, 0, i};
		ASSERT_EQ(pthread_create(&th[i], NULL, local_thread, &loc[i]),
		          0);
	}
	for (int p = 0; p < PROCS; p++)
		pid[p] = shm_spawn("stress", env.sock, iters, args[0], args[1],
		                   args[2], args[3], args[4], args[5], args[6],
		                   args[7], NULL);
	for (int p = 0; p < PROCS; p++)
		ASSERT_EQ(shm_wait(pid[p], 100), 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
		ASSERT_GT(loc[i].rounds, 0);
	}
	shm_wait_clients(&env, 0);
	printf("#   %s rounds per client thread, %zu + %zu in process, "
	       "%llu segments, %llu evictions\n",
	       iters, loc[0].rounds, loc[1].rounds,
	       (unsigned long long)shm_stats(&env).segments,
	       (unsigned long long)shm_stats(&env).evictions);
	shm_check(&env);
	/* Nothing changed the shared objects, and every client reference
	   to them came back: only the engine's own is left. */
	for (int i = 0; i < SHARED; i++) {
		ASSERT_OK(gfn_object_get(env.e, s.id[i], &v));
		ASSERT_U64_EQ(shm_hash(v.data, v.size), s.hash[i]);
		ASSERT_OK(gfn_object_release(env.e, s.id[i]));
		ASSERT_OK(gfn_object_release(env.e, s.id[i]));
		ASSERT_FAILS(gfn_object_release(env.e, s.id[i]), GFN_ESTATE);
	}
	/* Under pressure all along; what is left is cached (evictable). */
	ASSERT_GT(shm_stats(&env).evictions, s0.evictions);
	ASSERT_GE(shm_stats(&env).objects, s0.objects);
	shm_env_stop(&env);
}

static const struct shm_role roles[] = {
        {"stress", child_stress},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	shm_child_dispatch(argc, argv, roles);
	printf("# test_shm_stress\n");
	TEST_RUN(shm_stress_processes_and_threads);
	return 0;
}
