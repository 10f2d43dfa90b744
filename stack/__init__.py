"""Runs the whole system locally without Docker: the MongoDB stand-in, RabbitMQ, services, gateway.

`make run`, `make up`/`make down` and the end-to-end tests all go through this package.
"""
