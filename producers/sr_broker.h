/* The embedded development broker: librdkafka's mock cluster
 * (librdkafka/rdkafka_mock.h), a real Kafka-protocol broker on loopback that
 * lives in this process's memory.  `streamrec broker`, `streamrec up` and
 * the tests run on it so a developer needs no JVM and nothing on disk.
 *
 * What it is NOT (librdkafka 2.0.2, src/rdkafka_mock.c; verified by
 * tests/unit/test_broker.c):
 *  - Retention: each partition keeps at most 5 MiB (1024*1024*5 bytes of
 *    record batches) or 100,000 record batches (a produce request carries
 *    one batch per partition, often many messages), whichever is hit first;
 *    older batches are dropped silently and the log start offset moves up.
 *    Use enough partitions and never depend on more history than that.
 *  - Durability: nothing on disk; everything is gone when the process exits.
 *  - Port: each mock broker binds 127.0.0.1 on a kernel-chosen port;
 *    2.0.2's API has no way to choose it (rd_kafka_mock_broker_new binds
 *    port 0), so a caller must read the address from
 *    sr_broker_bootstraps() (the first stdout line of `streamrec broker`)
 *    every time.  Stable addresses need a real Kafka.
 *
 * What works against it (2.0.2, checked in tests/unit/test_broker.c):
 * produce (idempotent too), fetch, ListOffsets/watermarks, Metadata, and
 * consumer groups with subscribe: JoinGroup/SyncGroup/Heartbeat/LeaveGroup
 * with the classic eager protocol, so a second member joining triggers a
 * rebalance that splits the partitions (the revoke callback, then assign
 * callbacks run), and a member that closes gives its partitions back;
 * OffsetCommit/OffsetFetch, so offsets committed by one member are read
 * back (rd_kafka_committed) by a later member of the group.  Observed
 * timing: the first member gets its assignment about 3 s after subscribe
 * (the mock's initial rebalance delay), and a join/leave rebalance takes
 * about 5 s; code and tests must wait for assignments, never sleep a
 * fixed time.  What does not work / differs: group state and committed
 * offsets live only as long as the broker process; topic auto-creation
 * uses the mock's default partition count, so topics are created
 * explicitly here, and the mock creates ANY topic a client names, even with
 * allow.auto.create.topics=false (an "unknown topic" error must be
 * injected with rd_kafka_mock_topic_set_error); no TLS, SASL or ACLs.  Trap seen while writing the
 * tests (not a mock limitation, librdkafka's rule): rd_kafka_destroy of a
 * consumer hangs forever (debug log: "Handle is terminating in state
 * INIT: 3 refcnts, 0 toppar(s)") while the application still holds any
 * rd_kafka_message_t from it, or a partition list returned by
 * rd_kafka_assignment(); destroy those before rd_kafka_destroy.
 *
 * Threading: the mock cluster runs on its own librdkafka thread; the
 * sr_broker_t functions are called from one thread. */
#ifndef SR_BROKER_H
#define SR_BROKER_H

#include <stddef.h>

typedef struct sr_broker_s sr_broker_t;

/* Starts a mock cluster of `brokers` brokers (>= 1) and creates each of
 * the ntopics topics with `partitions` partitions (replication factor 1).
 * Returns NULL with errstr on error (librdkafka could not create the
 * cluster, a topic could not be created, bad arguments). */
sr_broker_t *sr_broker_new(int brokers, int partitions, const char *const *topics,
                           size_t ntopics, char *errstr, size_t errstr_size);

/* Creates one more topic.  Returns 0 or SR_ERR_KAFKA (e.g. it exists). */
int sr_broker_topic_create(sr_broker_t *b, const char *topic, int partitions);

/* The bootstrap address list, "127.0.0.1:port[,...]"; owned by b. */
const char *sr_broker_bootstraps(const sr_broker_t *b);

/* The mock cluster handle (librdkafka's rd_kafka_mock_cluster_t *), for
 * tests that inject errors or take a broker down; owned by b. */
void *sr_broker_mock(sr_broker_t *b);

/* Stops the cluster (closing every client connection) and frees it.  NULL
 * is a no-op. */
void sr_broker_destroy(sr_broker_t *b);

#endif
