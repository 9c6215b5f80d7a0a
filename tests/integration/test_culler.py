"""The idle culler runs as a hub service and stops a server nobody uses."""

import time

import pytest

from tests.integration.conftest import start_hub, stop_hub


@pytest.fixture(scope="module")
def culling_hub(built_images, tmp_path_factory):
    running = start_hub(tmp_path_factory.mktemp("culler"), idle_timeout_s=20, cull_every_s=5)
    yield running
    stop_hub(running)


def test_an_idle_server_is_stopped_by_the_culler(culling_hub):
    culling_hub.enrol("demo", "hugo")
    assert culling_hub.spawn("hugo", {"course": "demo"}).status_code in (201, 202)
    culling_hub.wait_ready("hugo")
    started = time.monotonic()
    culling_hub.wait_stopped("hugo", timeout_s=120)
    assert time.monotonic() - started >= 5  # stopped by the culler's schedule, not at once
