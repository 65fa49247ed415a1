/* The ranker's HTTP transport: libmicrohttpd in epoll mode with a pool of
 * worker threads (each with its own epoll set), HTTP/1.1 keep-alive, a
 * per-connection header memory limit, a body limit (413 as soon as a
 * Content-Length or the bytes received exceed it) and a connection limit.
 * It only moves bytes: every request is answered by sr_api_handle.
 *
 * Threading: requests run on the MHD worker threads; sr_http_new/destroy
 * on one control thread.  The api must outlive the server. */
#ifndef SR_HTTP_H
#define SR_HTTP_H

#include <stddef.h>

#include "sr_api.h"

typedef struct sr_http_s sr_http_t;

typedef struct sr_http_opts {
    const char *listen;       /* "host:port" / "[v6]:port"; port 0 = any free */
    int threads;              /* worker threads (ranker.threads) */
    size_t body_max;          /* bytes (ranker.body.max) */
    unsigned connections_max; /* concurrent connections; 0 = 1024 */
    unsigned idle_timeout_s;  /* idle keep-alive connections are closed; 0 = 60 */
    size_t header_max;        /* per-connection header memory; 0 = 64 KiB */
} sr_http_opts_t;

/* Binds and starts serving.  NULL with errstr set (bad address, port in
 * use, ...). */
sr_http_t *sr_http_new(sr_api_t *api, const sr_http_opts_t *o, char *errstr, size_t errstr_size);
/* The port actually bound (useful with port 0). */
int sr_http_port(const sr_http_t *h);
/* Stops accepting, finishes in-flight requests, joins the workers.  NULL is
 * a no-op. */
void sr_http_destroy(sr_http_t *h);

#endif
