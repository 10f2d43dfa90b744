import pymongo
import pytest

from services.auth.app import create_app
from shared.identity import IDENTITY_HEADER, Identity, encode_identity

INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
JWT_SECRET = "test-jwt-secret-0123456789abcdef-xyz"


@pytest.fixture
def auth_config(mongo_url, amqp_url, db_prefix):
    config = {
        "MONGO_URL": mongo_url,
        "AMQP_URL": amqp_url,
        "MONGO_DB_PREFIX": db_prefix,
        "INTERNAL_SECRET": INTERNAL_SECRET,
        "JWT_SECRET": JWT_SECRET,
        "PASSWORD_HASH_MEMORY_KIB": 8192,
        "PASSWORD_HASH_TIME_COST": 1,
        "LOGIN_MAX_FAILURES_PER_USER": 3,
        "LOGIN_MAX_FAILURES_PER_IP": 6,
        "LOG_FORMAT": "text",
    }
    yield config
    pymongo.MongoClient(mongo_url).drop_database(f"{db_prefix}auth")


@pytest.fixture
def auth_app(auth_config):
    return create_app(auth_config)


@pytest.fixture
def client(auth_app):
    return auth_app.test_client()


@pytest.fixture
def db(auth_app):
    return auth_app.extensions["mongo_db"]


def identity_headers(user_id=None, username=None, session_id=None, client_ip="10.0.0.1", secret=INTERNAL_SECRET):
    identity = Identity(user_id=user_id, username=username, session_id=session_id, client_ip=client_ip)
    return {IDENTITY_HEADER: encode_identity(identity, secret)}


@pytest.fixture
def make_user(client, unique):
    counter = iter(range(1000))

    def make(name=None, password="correct horse battery"):
        name = name or f"user{next(counter)}_{unique}"
        response = client.post(
            "/account/register/", json={"username": name, "email": f"{name}@example.org", "password": password}
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["user"]

    return make


@pytest.fixture
def login(client):
    def do_login(username, password="correct horse battery", client_ip="10.0.0.1"):
        response = client.post(
            "/account/authenticate/",
            data={"username": username, "password": password},
            headers=identity_headers(client_ip=client_ip),
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return do_login
