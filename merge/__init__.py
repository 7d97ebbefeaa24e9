"""The SCD Type 2 merge engine and the warehouse dialects. Pure: builds SQL, never opens a connection."""
