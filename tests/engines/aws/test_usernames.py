"""The aws engine's username policy over the framework's template language (tests/framework/
test_usernames.py covers the language): Vault's default template, IAM/STS length limits and
display-name normalisation."""

from __future__ import annotations

import re

import pytest

from strongroom.engines.aws.creds import DEFAULT_TEMPLATE, generate_username, normalize
from strongroom.framework import UsernameTemplateError


def test_default_template_iam_and_sts() -> None:
    iam = generate_username(DEFAULT_TEMPLATE, "IAM", "token", "my role")
    assert re.fullmatch(r"vault-token-my_role-\d{10}-[A-Za-z0-9]{20}", iam)
    sts = generate_username("", "STS")
    assert re.fullmatch(r"vault-\d{10}-[A-Za-z0-9]{15}", sts) and len(sts) == 32
    long = generate_username(DEFAULT_TEMPLATE, "IAM", "d" * 40, "p" * 40)
    assert len(long) == 64 and long.startswith("vault-" + "d" * 40 + "-p-")


def test_fields_of_the_aws_data() -> None:
    out = generate_username('{{ .Type }}-{{ .DisplayName }}-{{ .PolicyName | uppercase }}', "IAM", "a:b", "r")
    assert out == "IAM-a_b-R"
    with pytest.raises(UsernameTemplateError, match="can't evaluate field RoleName"):
        generate_username("{{ .RoleName }}", "IAM")


def test_length_limits_and_normalize() -> None:
    with pytest.raises(UsernameTemplateError, match="exceeds the STS username length limits of 32 chars"):
        generate_username("{{ random 33 }}", "STS")
    with pytest.raises(UsernameTemplateError, match="IAM username length limits of 64"):
        generate_username("{{ random 65 }}", "IAM")
    assert len(generate_username("{{ random 64 }}", "IAM")) == 64
    with pytest.raises(UsernameTemplateError, match="generated an empty username"):
        generate_username('{{ if eq .Type "STS" }}x{{ end }}', "IAM")
    assert normalize("a b/c:d+e=f,g.h@i_j-k") == "a_b_c_d+e=f,g.h@i_j-k"
