"""The client side: ``strongroom agent`` (Vault Agent's configuration and behaviour).

It talks to the server over HTTP only (strongroom.api), never importing the server's packages
(an import-linter contract). :mod:`.config` reads the file, :mod:`.auth` logs in, :mod:`.runner`
keeps the token alive and writes the sinks, :mod:`.main` runs it all until a signal;
:mod:`.template` renders consul-template's template language (docs/agent-templates.md).
"""
