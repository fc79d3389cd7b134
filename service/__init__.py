"""Decision service: FastAPI app, stores (embedded, Redis), learner worker, metrics, CLI."""
