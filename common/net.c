/* Loopback port picking for servers we start; see sr_net.h for why the
 * ephemeral range is avoided. */
#include "sr_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SR_NET_LOW_PORT 10000

/* The first port of the kernel's ephemeral range; Linux's default when the
 * file cannot be read. */
static int ephemeral_low(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) lo = 32768;
        fclose(f);
    }
    return lo;
}

static int port_is_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int one = 1;
    /* The server will set SO_REUSEADDR too; without it here, a port in
     * TIME_WAIT from an earlier test would look taken. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0;
    close(fd);
    return ok;
}

int sr_net_free_port(void)
{
    int hi = ephemeral_low();
    if (hi <= SR_NET_LOW_PORT + 100) hi = 65536; /* odd range: use what is above */
    int low = hi == 65536 ? 61000 : SR_NET_LOW_PORT;
    int span = hi - low;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint32_t x = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() * 2654435761u);
    for (int tries = 0; tries < 200; tries++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
        int port = low + (int)(x % (uint32_t)span);
        if (port_is_free(port)) return port;
    }
    return -1;
}
