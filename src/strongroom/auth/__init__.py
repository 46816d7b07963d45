"""Auth methods (userpass, approle, ...): backends that log clients in. Same import rules as engines/.

``AUTH_METHODS`` is the mount-type registry core consults for sys/auth (``"module:factory"``, imported
only when a mount of that type is created or restored); the token method is core's own.
"""

from __future__ import annotations

from strongroom.framework.registry import FactorySpec

AUTH_METHODS: dict[str, FactorySpec] = {
    "userpass": "strongroom.auth.userpass:UserpassBackend",
    "approle": "strongroom.auth.approle:AppRoleBackend",
    "kubernetes": "strongroom.auth.kubernetes:KubernetesBackend",
    "ldap": "strongroom.auth.ldap:LdapBackend",
    "jwt": "strongroom.auth.jwt:JWTBackend",
    "oidc": "strongroom.auth.jwt:JWTBackend",
    "github": "strongroom.auth.github:GitHubBackend",
    "okta": "strongroom.auth.okta:OktaBackend",
    "cert": "strongroom.auth.cert:CertBackend",
    "aws": "strongroom.auth.aws:AwsBackend",
    "container": "strongroom.auth.container:ContainerBackend",
    "app-id": "strongroom.auth.appid:AppIdBackend",
}

__all__ = ["AUTH_METHODS"]
