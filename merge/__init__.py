"""The SCD Type 2 merge engine and the dialect base. Pure: builds SQL, never opens a connection."""
