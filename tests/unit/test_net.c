/* sr_net_free_port: a port a server can bind, outside the range the kernel
 * gives to outgoing connections (the CI failure it fixes: `up`'s ranker
 * lost its port to some client's source port). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sr_net.h"

static int ephemeral_low(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        cr_assert_eq(fscanf(f, "%d %d", &lo, &hi), 2);
        fclose(f);
    }
    return lo;
}

Test(net, free_port_is_below_the_ephemeral_range)
{
    int low = ephemeral_low();
    for (int i = 0; i < 50; i++) {
        int port = sr_net_free_port();
        cr_assert_gt(port, 1023);
        cr_assert_lt(port, low, "port %d is in the ephemeral range (from %d)", port, low);
    }
}

Test(net, free_port_can_be_bound_and_listened_on)
{
    int port = sr_net_free_port();
    cr_assert_gt(port, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "port %d", port);
    cr_assert_eq(listen(fd, 1), 0);
    close(fd);
}

Test(net, a_port_in_use_is_not_returned)
{
    /* Hold many ports at once: none of the answers may be one we hold. */
    enum { N = 64 };
    int fds[N], ports[N];
    for (int i = 0; i < N; i++) {
        ports[i] = sr_net_free_port();
        cr_assert_gt(ports[i], 0);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[i])};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0, "port %d", ports[i]);
        cr_assert_eq(listen(fds[i], 1), 0);
        for (int j = 0; j < i; j++)
            cr_assert_neq(ports[i], ports[j]);
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
}
