/* Subcommand entry points.  Each takes the argv after "streamrec" (argv[0]
 * is the command name) and returns the process exit status.  cmd/ only
 * parses options and calls into the libraries. */
#ifndef SR_CMD_H
#define SR_CMD_H

#define SR_CMD_LIST(X)                                                         \
    X(up, "run the whole local pipeline on embedded defaults")                 \
    X(broker, "embedded development Kafka broker (librdkafka mock cluster)")   \
    X(train, "consume events, learn online, write the model to Redis")         \
    X(serve, "HTTP ranker: recommend, re-rank, similar, popular")              \
    X(produce, "send an event log (CSV or JSON lines) to Kafka")               \
    X(simulate, "generate realistic shop traffic (CSV file or live Kafka)")    \
    X(eval, "prequential evaluation of the model and baselines on a log")      \
    X(top, "live view of the metrics topic")                                   \
    X(inspect, "print a user's or item's state from Redis")                    \
    X(config, "list the configuration properties (--markdown for the docs)")

#define SR_CMD_DECL_(name, help) int sr_cmd_##name(int argc, char **argv);
SR_CMD_LIST(SR_CMD_DECL_)
#undef SR_CMD_DECL_

#endif
