"""HTTP APIs: the FastAPI app factory and one thin router per API."""
