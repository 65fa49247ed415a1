/* Keeps the producers library non-empty until its sources land. */
typedef int sr_producers_placeholder_t;
