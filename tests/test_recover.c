/*
 * test_recover.c - the engine's handling of a device fault that poisons a
 * context (CUDA's sticky errors), run everywhere through a fake backend
 * with fault injection. It tests gfn's logic, not a driver: quarantine,
 * re-placement of queued work, reset, retirement, and that every other
 * invocation and device goes on. The fake is a backend with two devices
 * whose memory is host memory but which, unlike the CPU backend, goes
 * through the device pool and copies, as a GPU does.
 */
#include "test.h"

#include <stdatomic.h>
#include <unistd.h>

#include "runtime/backend.h"
#include "runtime/util.h"

struct gfn_bdev {
	int idx;             /* fake device index */
	atomic_int poisoned; /* every call fails until reset */
};
struct gfn_bqueue {
	gfn_bdev *dev; /* owner */
};
struct gfn_bkernel {
	gfn_cpu_kernel_fn fn; /* the C function */
	void *user;           /* its argument */
};

static atomic_int fault_dev = -1;  /* device whose launch faults */
static atomic_int fault_countdown; /* launches there before the fault */
static atomic_int reset_fails;     /* device_reset refuses */
static atomic_int resets;          /* device_reset calls */
static atomic_int slow0_us;        /* extra time of each fake0 launch */

static gfn_status fk_probe(unsigned hint, int *count)
{
	(void)hint;
	*count = 2;
	return GFN_OK;
}

static gfn_status fk_info(int idx, gfn_device_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "fake%d", idx);
	info->backend = GFN_BACKEND_CPU;
	info->backend_index = idx;
	info->memory_bytes = (uint64_t)1 << 30;
	info->compute_units = 1;
	info->numa_node = -1;
	return GFN_OK;
}

static gfn_status fk_open(int idx, gfn_bdev **out)
{
	*out = calloc(1, sizeof(**out));
	(*out)->idx = idx;
	return GFN_OK;
}

static void fk_close(gfn_bdev *d)
{
	free(d);
}

static gfn_status fk_queue_create(gfn_bdev *d, gfn_bqueue **out)
{
	if (atomic_load(&d->poisoned))
		return gfn__fail(GFN_EDEVICE, "fake: context poisoned");
	*out = calloc(1, sizeof(**out));
	(*out)->dev = d;
	return GFN_OK;
}

static void fk_queue_destroy(gfn_bqueue *q)
{
	free(q);
}

static gfn_status fk_kernel_load(gfn_bdev *d, const gfn_ksrc *src,
                                 gfn_bkernel **out, int *from_cache)
{
	*from_cache = 0;
	if (src->kind != GFN_KSRC_CPU_FN)
		return gfn__fail(GFN_ENOTSUP, "fake: C functions only");
	if (atomic_load(&d->poisoned))
		return gfn__fail(GFN_EDEVICE, "fake: context poisoned");
	*out = calloc(1, sizeof(**out));
	(*out)->fn = src->cpu_fn;
	(*out)->user = src->user;
	return GFN_OK;
}

static void fk_kernel_unload(gfn_bdev *d, gfn_bkernel *k)
{
	(void)d;
	free(k);
}

static gfn_status poisoned_fail(void)
{
	return gfn__fail(GFN_EDEVICE, "fake: context poisoned");
}

/* Tensors hold gfn_bmem pointers on a device: give the C kernel memory. */
static void to_host(gfn_tensor *dst, const gfn_tensor *src, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		dst[k] = src[k];
		dst[k].data = ((const gfn_bmem *)src[k].data)->ptr;
	}
}

static gfn_status fk_launch(gfn_bqueue *q, gfn_bkernel *k, const gfn_launch *l)
{
	gfn_tensor in[GFN_MAX_INPUTS], out[GFN_MAX_OUTPUTS];
	gfn_kernel_args a = *l->args;

	if (atomic_load(&q->dev->poisoned))
		return poisoned_fail();
	if (atomic_load(&fault_dev) == q->dev->idx &&
	    atomic_fetch_sub(&fault_countdown, 1) == 1) {
		atomic_store(&q->dev->poisoned, 1);
		return gfn__fail(GFN_EDEVICE, "fake: illegal address");
	}
	if (q->dev->idx == 0 && atomic_load(&slow0_us))
		usleep((useconds_t)atomic_load(&slow0_us));
	to_host(in, a.inputs, a.n_inputs);
	to_host(out, a.outputs, a.n_outputs);
	a.inputs = in;
	a.outputs = out;
	return k->fn(&a, k->user) ? gfn__fail(GFN_EKERNEL, "fake: kernel")
	                          : GFN_OK;
}

static gfn_status fk_sync(gfn_bqueue *q)
{
	return atomic_load(&q->dev->poisoned) ? poisoned_fail() : GFN_OK;
}

static gfn_status fk_mem_alloc(gfn_bdev *d, size_t size, gfn_bmem *out)
{
	if (atomic_load(&d->poisoned))
		return poisoned_fail();
	out->ptr = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
	out->size = size;
	out->handle = NULL;
	return GFN_OK;
}

static void fk_mem_free(gfn_bdev *d, gfn_bmem *m)
{
	(void)d;
	free(m->ptr);
}

static gfn_status fk_h2d(gfn_bqueue *q, const gfn_bmem *dst, size_t off,
                         const void *src, size_t n)
{
	if (atomic_load(&q->dev->poisoned))
		return poisoned_fail();
	memcpy((char *)dst->ptr + off, src, n);
	return GFN_OK;
}

static gfn_status fk_d2h(gfn_bqueue *q, void *dst, const gfn_bmem *src,
                         size_t off, size_t n)
{
	if (atomic_load(&q->dev->poisoned))
		return poisoned_fail();
	memcpy(dst, (const char *)src->ptr + off, n);
	return GFN_OK;
}

static int fk_poisoned(gfn_bdev *d)
{
	return atomic_load(&d->poisoned);
}

static gfn_status fk_reset(gfn_bdev *d)
{
	atomic_fetch_add(&resets, 1);
	if (atomic_load(&reset_fails))
		return gfn__fail(GFN_EDEVICE, "fake: device lost");
	atomic_store(&d->poisoned, 0);
	return GFN_OK;
}

static const gfn_backend_ops fake_ops = {
        .api_version = GFN_BACKEND_API_VERSION,
        .name = "fake",
        .kind = GFN_BACKEND_CPU,
        .flags = 0, /* a "GPU": pool, copies, launch */
        .probe = fk_probe,
        .device_info = fk_info,
        .device_open = fk_open,
        .device_close = fk_close,
        .queue_create = fk_queue_create,
        .queue_destroy = fk_queue_destroy,
        .kernel_load = fk_kernel_load,
        .kernel_unload = fk_kernel_unload,
        .launch = fk_launch,
        .sync = fk_sync,
        .mem_alloc = fk_mem_alloc,
        .mem_free = fk_mem_free,
        .copy_h2d = fk_h2d,
        .copy_d2h = fk_d2h,
        .poisoned = fk_poisoned,
        .device_reset = fk_reset,
};

/* Devices: 0 is the real CPU, 1 and 2 the fakes. */
enum { FAKE0 = 1u << 1, FAKE1 = 1u << 2 };

struct outcome {
	size_t ok, edevice, other;
};

/* Run n vadds allowed on mask; check every OK result; count statuses. */
static struct outcome run_many(gfn_engine *e, gfn_function fn, uint64_t mask,
                               size_t n)
{
	struct outcome r = {0, 0, 0};
	gfn_future *f = calloc(n, sizeof(*f));
	gfn_object *in = calloc(n, sizeof(*in));
	float a[32], c[32];
	gfn_object b;

	for (int k = 0; k < 32; k++)
		a[k] = (float)k;
	b = test_make_f32_1d(e, a, 32);
	for (size_t i = 0; i < n; i++) {
		gfn_object args[2];
		gfn_invocation inv;
		for (int k = 0; k < 32; k++)
			a[k] = (float)(i * 100 + (size_t)k);
		in[i] = test_make_f32_1d(e, a, 32);
		args[0] = in[i];
		args[1] = b;
		inv = test_inv(fn, 2, args, 0, NULL);
		inv.devices = mask;
		/* EBUSY while the only allowed device is being reset:
		   retry, as a client does. */
		gfn_status st;
		while ((st = gfn_invoke(e, &inv, &f[i])) == GFN_EBUSY)
			test_sleep_us(100);
		ASSERT_OK(st);
	}
	for (size_t i = 0; i < n; i++) {
		gfn_status s = gfn_future_wait(e, f[i], -1);
		if (s == GFN_OK) {
			gfn_object o = test_take_output(e, f[i]);
			test_read_f32(e, o, c, 32);
			for (int k = 0; k < 32; k++)
				ASSERT_DBL_EQ(c[k],
				              (float)(i * 100 + (size_t)k) +
				                      (float)k);
			test_drop(e, o);
			r.ok++;
		} else if (s == GFN_EDEVICE) {
			r.edevice++;
		} else {
			r.other++;
		}
		test_drop(e, in[i]);
		ASSERT_OK(gfn_future_release(e, f[i]));
	}
	test_drop(e, b);
	free(f);
	free(in);
	return r;
}

static gfn_engine *fake_engine(gfn_function *fn)
{
	gfn_config cfg;
	gfn_engine *e;
	size_t n;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_device_count(e, &n));
	ASSERT_EQ(n, 3);
	*fn = test_register_vadd(e, "vadd");
	return e;
}

static void arm(int dev, int after, int fail_reset)
{
	atomic_store(&fault_countdown, after);
	atomic_store(&reset_fails, fail_reset);
	atomic_store(&resets, 0);
	atomic_store(&fault_dev, dev);
}

/* A fault on fake1: one invocation fails, the device is reset, all else
   completes right, and fake1 works again afterwards. */
static void recover_reset(void)
{
	gfn_function fn;
	gfn_engine *e = fake_engine(&fn);
	struct outcome r;
	gfn_stats s;

	/* fake0 is slower, so placement prefers fake1 and queues there;
	   the fault on fake1 then moves that queue to fake0. */
	atomic_store(&slow0_us, 200);
	arm(1, 20, 0);
	r = run_many(e, fn, FAKE0 | FAKE1, test_scaled(400, 100));
	atomic_store(&slow0_us, 0);
	ASSERT_EQ(r.edevice, 1);
	ASSERT_EQ(r.other, 0);
	s = test_stats_idle(e);
	ASSERT_EQ(s.device_resets, 1);
	ASSERT_EQ(s.devices_retired, 0);
	ASSERT_EQ(atomic_load(&resets), 1);
	atomic_store(&fault_dev, -1);
	r = run_many(e, fn, FAKE1, 50); /* the reset device runs again */
	ASSERT_EQ(r.ok, 50);
	gfn_engine_destroy(e);
}

/* The reset fails: the device is retired, work goes to the others. */
static void recover_retire(void)
{
	gfn_function fn;
	gfn_engine *e = fake_engine(&fn);
	struct outcome r;
	gfn_object in[2];
	gfn_invocation inv;
	gfn_future f;
	gfn_stats s;

	atomic_store(&slow0_us, 200);
	arm(1, 5, 1);
	r = run_many(e, fn, FAKE0 | FAKE1, test_scaled(200, 50));
	atomic_store(&slow0_us, 0);
	ASSERT_EQ(r.edevice, 1);
	ASSERT_EQ(r.other, 0);
	s = test_stats_idle(e);
	ASSERT_EQ(s.devices_retired, 1);
	ASSERT_EQ(s.device_resets, 0);
	atomic_store(&fault_dev, -1);
	r = run_many(e, fn, FAKE0 | FAKE1, 50); /* all on fake0 now */
	ASSERT_EQ(r.ok, 50);
	/* Only the retired device allowed: refused at once. */
	in[0] = test_make_f32_1d(e, NULL, 0);
	in[1] = test_make_f32_1d(e, NULL, 0);
	inv = test_inv(fn, 2, in, 0, NULL);
	inv.devices = FAKE1;
	ASSERT_FAILS(gfn_invoke(e, &inv, &f), GFN_ENODEV);
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	test_vadd_roundtrip(e, fn, 100); /* the real CPU is untouched */
	gfn_engine_destroy(e);
}

/* Work pinned to the faulting device that no other may run ends with
   GFN_EDEVICE when it cannot be moved; every invocation ends. */
static void recover_pinned(void)
{
	gfn_function fn;
	gfn_engine *e = fake_engine(&fn);
	struct outcome r;
	size_t n = test_scaled(300, 100);

	arm(1, 3, 0); /* fake index 1 is engine device 2 */
	r = run_many(e, fn, FAKE1, n);
	ASSERT_EQ(r.ok + r.edevice, n);
	ASSERT_GE(r.edevice, 1);
	ASSERT_EQ(r.other, 0);
	ASSERT_EQ(test_stats_idle(e).device_resets, 1);
	atomic_store(&fault_dev, -1);
	ASSERT_EQ(run_many(e, fn, FAKE1, 20).ok, 20);
	gfn_engine_destroy(e);
}

int main(void)
{
	gfn__backend_set_extra(&fake_ops);
	TEST_RUN(recover_reset);
	TEST_RUN(recover_retire);
	TEST_RUN(recover_pinned);
	gfn__backend_set_extra(NULL);
	return 0;
}
