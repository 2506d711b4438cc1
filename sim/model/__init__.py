"""Model layer: one replication: the services, patients, waiting lists; run_single returns plain records."""
