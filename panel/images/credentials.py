"""Registry credentials per team, encrypted at rest; sealing of secrets that ride in a Job.

Owner: helper C (see /work/notes/images.md). Contract:
- ``seal(data: dict) -> str`` / ``unseal(token: str) -> dict``: Fernet with a key derived
  from SECRET_KEY (HKDF), for credentials in Job payloads.
- ``store(team, registry, username, password, *, acting_user, source)``
- ``remove(team, registry, *, acting_user, source)``
- ``for_registry(team, registry) -> (username, password) | None``
"""
