/* Keeps the consumers library non-empty until its sources land. */
typedef int sr_consumers_placeholder_t;
