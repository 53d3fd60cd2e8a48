"""Users for the teams tests, without passwords (hashing one costs a second on a busy
machine; tests that sign in use tests/web/conftest.py's make_user)."""

import pytest
from django.contrib.auth import get_user_model

from panel.teams.models import Membership

ROLES = [role.value for role in Membership.Role]


def member(name, team=None, role=None, **extra):
    """A user named ``name`` (e-mail name@example.com), with ``role`` in ``team`` if given."""
    user = get_user_model().objects.create_user(name, email=f"{name}@example.com", **extra)
    if team is not None:
        Membership.objects.create(user=user, team=team, role=role)
    return user


def members_of(team) -> dict:
    """One user per role of ``team``, named <role>-user."""
    return {role: member(f"{role}-user", team, role) for role in ROLES}


@pytest.fixture
def site_admin(db):
    return member("root-user", is_superuser=True, is_staff=True)
