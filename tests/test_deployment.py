"""The production configuration: settings from the environment, check --deploy, docker-compose."""
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_production_configuration_passes_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="0",
                    SECRET_KEY=secrets.token_urlsafe(60), ALLOWED_HOSTS="evalsite.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_off_without_secret_key_says_what_to_set():
    result = manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_a_bad_boolean_is_named():
    result = manage("check", DEBUG="maybe")
    assert "DEBUG='maybe': use 1/0" in result.stderr


def docker_compose():
    binary = shutil.which("docker-compose")
    if not binary:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (.ci/run installs Debian's package)")
        pytest.skip("docker-compose is not installed")
    return binary


def compose_config(*args):
    env = {**os.environ, "SECRET_KEY": "for-the-config-test"}
    result = subprocess.run([docker_compose(), *args, "config"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_file_is_accepted():
    config = compose_config()
    assert set(config["services"]) >= {"web", "worker", "postgres", "redis", "vllm"}
    # Only vLLM needs a GPU, so only vLLM waits behind a profile.
    profiled = {name for name, service in config["services"].items() if service.get("profiles")}
    assert profiled == {"vllm"}
    assert config["services"]["vllm"]["profiles"] == ["gpu"]
    web = config["services"]["web"]
    assert "gunicorn evalsite.wsgi" in " ".join(web["command"]) if isinstance(web["command"], list) \
        else "gunicorn evalsite.wsgi" in web["command"]
    assert web["environment"]["DEBUG"] == "0"
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"].startswith("redis://")
    assert "generation" in str(config["services"]["worker"]["command"])


def test_vllm_service_sits_behind_the_gpu_profile():
    config = compose_config("--profile", "gpu")
    vllm = config["services"]["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai")
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "--served-model-name" in str(vllm["command"])


def test_compose_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run([docker_compose(), "config"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "set SECRET_KEY" in result.stderr


def test_embedded_default_works_in_a_fresh_checkout(tmp_path):
    """make demo on a fresh clone: no var/ folder yet, no DATABASE_URL, no Redis."""
    var = tmp_path / "not-yet-there"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                            env={**env, "VAR_DIR": str(var), "DEBUG": "1"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert (var / "db.sqlite3").stat().st_size > 0
