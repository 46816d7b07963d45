"""The container secret bridge: a client that follows a container engine's events and delivers a
scoped, response-wrapped Strongroom token into each labelled container as it starts."""
