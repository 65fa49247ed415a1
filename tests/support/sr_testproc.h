/* Helpers for integration tests: free loopback ports, child processes that
 * are always reaped by PID, a private redis-server, the embedded broker.
 * Tests are single-threaded users of these; nothing here is thread-safe. */
#ifndef SR_TESTPROC_H
#define SR_TESTPROC_H

#include <stddef.h>
#include <sys/types.h>

/* A free TCP port on 127.0.0.1 below the ephemeral range (sr_net.h says
 * why); racy only against another process picking the same port. */
int sr_test_free_port(void);

typedef struct sr_test_proc {
    pid_t pid;
    int out_fd; /* read end of the child's stdout, or -1 */
} sr_test_proc_t;

/* Starts argv[0] (searched in PATH) with argv; stdout is piped to out_fd
 * when capture_stdout, stderr inherited.  The child gets SIGKILL when the
 * calling thread dies (so call it from the test's main thread).  Returns 0
 * or -1; a program that cannot be executed exits 127. */
int sr_test_spawn(sr_test_proc_t *p, char *const argv[], int capture_stdout);
/* Reads one line of the child's stdout within timeout_ms into buf (no
 * newline). Returns its length or -1 on timeout/EOF. */
int sr_test_read_line(sr_test_proc_t *p, char *buf, size_t size, int timeout_ms);
/* Sends sig, waits up to timeout_ms, then SIGKILLs; always reaps.  Returns
 * the exit status as from waitpid, or -1 if it had to be killed. */
int sr_test_stop(sr_test_proc_t *p, int sig, int timeout_ms);
/* Runs a command to completion within timeout_ms, capturing stdout into a
 * malloc'd NUL-terminated string (*out, may be NULL to discard).  Returns
 * the exit code, or -1 on timeout (the child is killed). */
int sr_test_run(char *const argv[], char **out, int timeout_ms);

/* A private redis-server on a free port, no persistence.  Returns 0 and
 * fills proc and port. */
int sr_test_redis_start(sr_test_proc_t *proc, int *port);
/* The embedded broker (`$STREAMREC_BIN broker --partitions N`); bootstrap
 * ("127.0.0.1:port") copied into buf. */
int sr_test_broker_start(sr_test_proc_t *proc, int partitions, char *bootstrap, size_t size);
/* Path of the streamrec binary under test (STREAMREC_BIN or the build dir). */
const char *sr_test_bin(void);
/* Monotonic milliseconds. */
long long sr_test_now_ms(void);

#endif
