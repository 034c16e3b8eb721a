/* QEMU's replies over QMP (vm/qmp.c): the input is all QEMU says, in
 * order, on one end of a socket pair, then its end closes; the client
 * reads the greeting, negotiates, runs two commands and quits, as
 * tests/unit/test_qmp.c drives it. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qmp q;
	json_t *ret = NULL, *args;
	int sv[2];

	/* all of it must fit in the socket's buffer: nothing reads it here */
	if (size > 65536 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (write_all(sv[1], data, size) < 0 || shutdown(sv[1], SHUT_WR) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	if (qmp_open_fd(&q, sv[0], 1000) == 0) {
		if (qmp_execute(&q, "query-status", NULL, 1000, &ret) == 0)
			json_decref(ret);
		args = json_pack("{s:s}", "device", "drive0");
		qmp_execute(&q, "query-block", args, 1000, NULL);
		json_decref(args);
		qmp_quit(&q, 1000);
	}
	(void)qmp_error(&q);
	qmp_close(&q);
	close(sv[1]);
	return 0;
}
