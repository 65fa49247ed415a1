/* Keeps the model library non-empty until its sources land. */
typedef int sr_model_placeholder_t;
