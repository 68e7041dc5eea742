/*
 * graph.c - CUDA graphs: record the launches of a multi-kernel function
 * once by stream capture, then replay them with one cuGraphLaunch. A
 * launch costs ~3 us of CPU; a graph replay pays off from about three
 * kernels, and keeps the GPU fed without a CPU round trip between them.
 *
 * Capture is in THREAD_LOCAL mode: only the recording worker's own
 * unsafe calls are refused, other workers go on undisturbed.
 */
#include <stdlib.h>

#include "runtime/backends/cuda/cuda_int.h"
#include "runtime/util.h"

struct gfn_cuda_graph {
	gfn_bdev *dev;    /* device it was recorded on */
	CUgraph graph;    /* the captured graph */
	CUgraphExec exec; /* its launchable instance */
	unsigned gen;     /* device generation it belongs to */
};

static gfn_status need_graphs(const gfn_bqueue *q)
{
	gfn_cuda_api *cu = gfn__cu();

	if (cu->cuStreamBeginCapture && cu->cuStreamEndCapture &&
	    cu->cuGraphInstantiate && cu->cuGraphLaunch &&
	    cu->cuGraphExecDestroy && cu->cuGraphDestroy)
		return GFN_OK;
	return gfn__fail(GFN_ENOTSUP, "%s: the driver has no CUDA graphs",
	                 q->dev->name);
}

gfn_status gfn_cuda_graph_begin(gfn_bqueue *q)
{
	gfn_status s = need_graphs(q);
	CUresult r;

	if (s == GFN_OK && q->capturing)
		s = gfn__fail(GFN_ESTATE, "%s: already recording a graph",
		              q->dev->name);
	if (s == GFN_OK)
		s = gfn__cuda_stream(q);
	if (s != GFN_OK)
		return s;
	r = gfn__cu()->cuStreamBeginCapture(
	        q->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
	if (r != CUDA_SUCCESS)
		return gfn__cuda_fail(q->dev, r, "cuStreamBeginCapture");
	q->capturing = 1;
	return GFN_OK;
}

/* Make g's executable instance. */
static gfn_status instantiate(gfn_bqueue *q, gfn_cuda_graph *g)
{
	CUresult r = gfn__cu()->cuGraphInstantiate(&g->exec, g->graph, 0);

	if (r != CUDA_SUCCESS)
		return gfn__cuda_fail(q->dev, r, "cuGraphInstantiate");
	return GFN_OK;
}

gfn_status gfn_cuda_graph_end(gfn_bqueue *q, gfn_cuda_graph **out)
{
	CUgraph graph = NULL;
	gfn_cuda_graph *g;
	gfn_status s;
	CUresult r;

	*out = NULL;
	if (!q->capturing)
		return gfn__fail(GFN_ESTATE, "%s: not recording a graph",
		                 q->dev->name);
	q->capturing = 0;
	gfn__cuda_current(q->dev);
	r = gfn__cu()->cuStreamEndCapture(q->stream, &graph);
	if (r != CUDA_SUCCESS) /* a recorded call failed: nothing made */
		return gfn__cuda_fail(q->dev, r, "cuStreamEndCapture");
	g = calloc(1, sizeof(*g));
	if (!g) {
		gfn__cu()->cuGraphDestroy(graph);
		return gfn__fail(GFN_ENOMEM, "no memory for a graph");
	}
	g->dev = q->dev;
	g->graph = graph;
	g->gen = q->gen;
	s = instantiate(q, g);
	if (s != GFN_OK) {
		gfn__cu()->cuGraphDestroy(g->graph);
		free(g);
		return s;
	}
	*out = g;
	return GFN_OK;
}

gfn_status gfn_cuda_graph_launch(gfn_bqueue *q, gfn_cuda_graph *g)
{
	gfn_status s = gfn__cuda_stream(q);
	CUresult r;

	if (s != GFN_OK)
		return s;
	if (g->dev != q->dev || g->gen != q->gen)
		return gfn__fail(GFN_EINVAL,
		                 "%s: graph of another device or from before "
		                 "a reset",
		                 q->dev->name);
	r = gfn__cu()->cuGraphLaunch(g->exec, q->stream);
	return r == CUDA_SUCCESS ? GFN_OK
	                         : gfn__cuda_fail(q->dev, r, "cuGraphLaunch");
}

void gfn_cuda_graph_destroy(gfn_cuda_graph *g)
{
	if (!g)
		return;
	if (g->gen == atomic_load(&g->dev->gen)) {
		gfn__cuda_current(g->dev);
		gfn__cu()->cuGraphExecDestroy(g->exec);
		gfn__cu()->cuGraphDestroy(g->graph);
	}
	free(g);
}
