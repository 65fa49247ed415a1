/* Picking a loopback port for a server we are about to start.
 *
 * Why not just bind port 0: the kernel hands out ports from the ephemeral
 * range (net.ipv4.ip_local_port_range), the same range it uses for the
 * source ports of outgoing connections.  Between our probe and the child's
 * bind, any Kafka client or redis connection on the machine may take the
 * port as its source port, and the server then fails with "address in use"
 * (seen in CI: the ranker started by `streamrec up`).  Ports below the
 * ephemeral range are never handed out implicitly, so a port picked there
 * can only be lost to another program that also picks explicitly. */
#ifndef SR_NET_H
#define SR_NET_H

/* Returns a TCP port on 127.0.0.1 that was free a moment ago, chosen at
 * random below the ephemeral range (so that concurrent callers rarely pick
 * the same one), or -1 when none could be found.  Nothing is kept open: the
 * caller starts its server on the port and must still handle a lost race.
 * Thread-safe (no shared state; the random start comes from the clock and
 * the pid). */
int sr_net_free_port(void);

#endif
