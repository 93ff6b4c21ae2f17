"""An example FastAPI app that records user activity and sweeps stale sessions."""
