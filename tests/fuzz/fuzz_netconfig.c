/* A user's network-config merged with a cluster node's own (net/cluster.c):
 * libyaml's parser on the user's file, nook's checks that it leaves the
 * node's two NICs alone, the copy and the emitter. */
#include <stdint.h>
#include <stdlib.h>

#include "net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct buf ours = BUF_INIT;
	struct buf out = BUF_INIT;
	char uplink[18], node[18];

	if (!ours.p) {
		net_mac("", "fz-1", 0, uplink);
		net_node_mac("fz", 1, node);
		net_node_network_config(uplink, node, "10.77.0.1", 24, &ours);
	}
	if (net_network_config_merge((const char *)data, size, ours.p, &out) ==
	    0 && !out.p)
		abort();
	buf_free(&out);
	return 0;
}
