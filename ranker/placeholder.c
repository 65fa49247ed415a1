/* Keeps the ranker library non-empty until its sources land. */
typedef int sr_ranker_placeholder_t;
