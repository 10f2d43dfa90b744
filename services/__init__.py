"""The domain services; each is an independent Flask app with its own database."""
