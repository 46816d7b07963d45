"""The client side of Strongroom: the agent and what it is built from (templates, fetching secrets).

It talks to the server over HTTP only (an import-linter contract in pyproject.toml keeps it so).
"""
