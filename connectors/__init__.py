"""All I/O: Kafka Connect and the Debezium connectors, the sources, Kafka, the warehouse clients.

Importing the package registers the driver error classifiers with `core.failures`, so any code that
got a session or a client from here has its driver errors classified.
"""

from connectors import failures as _failures  # noqa: F401  (registers the classifiers)
