"""Users, password hashes, session tokens, registration, friendships and profiles."""
