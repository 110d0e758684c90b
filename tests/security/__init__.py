"""Security: nothing outside the repository is read, YAML is data, model output is data.

The socket's own protections (0700 directory, 0600 socket, peer credentials) are tested in
``tests/daemon/test_connections.py`` (``test_other_user_cannot_reach_the_socket``).
"""
