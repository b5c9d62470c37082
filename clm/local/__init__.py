"""The embedded local stack: moto's server, the resources of `infra/`, the API and the workers."""
