/* Keeps the store library non-empty until its sources land. */
typedef int sr_store_placeholder_t;
