"""Observability (Homing issue 15, point 2): `/metrics` read by a scraper, JSON log lines.

The metrics are read from real servers over HTTP and parsed with Prometheus's own text
parser; the JSON logs are read line by line from real `homing serve` / `homing worker`
processes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.jobs import registered_jobs
from app.observability.logs import JsonFormatter
from app.routing.jobs import REQUEUE_ABSENT_JOB
from tests.conftest import buyer, online_agent
from tests.support.client import WSClient
from tests.support.factories import make_shop
from tests.support.servers import ROOT, NodeProcess, RedisServer, free_port
from tests.test_multinode import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def outside_address() -> str:
    """This machine's address on its network (not loopback): where another machine reaches it.

    A UDP socket "connected" to a TEST-NET address takes the outgoing interface's address;
    nothing is sent.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        address = str(s.getsockname()[0])
    assert not ipaddress.ip_address(address).is_loopback, address
    return address


async def scrape(base: str, **headers: str) -> Samples:
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_metrics_report_this_servers_sockets_frames_acks_and_state(start_server, connect):
    srv = await start_server(run_jobs=False)
    kit = await make_shop(srv.ctx.db)
    agent = await online_agent(srv, kit, "agent1", connect)  # hello in, agent.status out and back
    b = await buyer(srv, kit, connect)
    await b.send({"type": "message.send", "client_msg_id": "m1", "body": "在吗"})
    await b.expect("message.ack")
    await agent.expect("conversation.assigned")
    await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB)
    ran_at = time.time()

    m = await scrape(srv.http)
    # Its own registry: exactly this server's traffic, not the other servers' of this process.
    assert value(m, "homing_ws_open_sockets", kind="buyer") == 1
    assert value(m, "homing_ws_open_sockets", kind="agent") == 1
    assert value(m, "homing_ws_frames_received_total", kind="buyer") == 1
    assert value(m, "homing_ws_frames_received_total", kind="agent") == 1
    assert value(m, "homing_ws_frames_sent_total", kind="buyer") >= 2  # hello, ack (and queue news)
    assert value(m, "homing_ws_frames_sent_total", kind="agent") >= 3  # hello, status, assigned
    assert value(m, "homing_ws_ack_seconds_count") == 1
    assert 0 < value(m, "homing_ws_ack_seconds_sum") < 60
    assert value(m, "homing_group_commit_batch_size_count") == 1
    assert value(m, "homing_group_commit_batch_size_sum") == 1
    assert value(m, "homing_bus_connected", bus="memory") == 1
    assert value(m, "homing_bus_publish_failures_total") == 0
    assert value(m, "homing_dispatcher_backlog") == 0
    # Jobs this server does not schedule appear once run; their time is when they finished.
    assert (
        ran_at - 60
        < value(m, "homing_job_last_success_timestamp_seconds", job=REQUEUE_ABSENT_JOB)
        <= ran_at
    )
    assert not any(
        name == "homing_job_last_success_timestamp_seconds"
        and dict(labels)["job"] != REQUEUE_ABSENT_JOB
        for name, labels in m
    )
    pool = "write" if srv.ctx.db.write_engine is not srv.ctx.db.engine else "main"
    assert value(m, "homing_db_pool_in_use", pool=pool) >= 0

    await b.close()
    for _ in range(100):
        if value(await scrape(srv.http), "homing_ws_open_sockets", kind="buyer") == 0:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the closed buyer socket is still counted")


async def test_metrics_show_the_pool_in_use_and_the_dispatcher_backlog(start_server):
    srv = await start_server(run_jobs=False)
    db = srv.ctx.db
    pool = "main" if db.write_engine is db.engine else "read"
    async with db.read() as s:
        await s.connection()  # checked out of the read pool while the scrape runs
        held = await scrape(srv.http)
    assert value(held, "homing_db_pool_in_use", pool=pool) >= 1
    # A stopped dispatcher leaves what it is asked to do waiting: the backlog shows it.
    await srv.ctx.dispatcher.stop()
    srv.ctx.dispatcher.on_signal("dispatch", ("shop-x", "general"))
    srv.ctx.dispatcher.on_signal("positions", ("shop-x", "general"))
    assert value(await scrape(srv.http), "homing_dispatcher_backlog") == 2


async def test_jobs_a_node_schedules_are_listed_from_the_start(start_server):
    srv = await start_server(run_jobs=True)
    m = await scrape(srv.http)
    for job in registered_jobs():
        assert value(m, "homing_job_last_success_timestamp_seconds", job=job.name) >= 0


async def test_metrics_show_the_bus_out_and_the_news_it_could_not_send(start_server, connect):
    redis = RedisServer().start()
    try:
        srv = await start_server(
            run_jobs=False, REDIS_URL=redis.url, HOMING_BUS_CHANNEL=f"obs-{secrets.token_hex(4)}"
        )
        m = await scrape(srv.http)
        assert value(m, "homing_bus_connected", bus="redis") == 1
        assert value(m, "homing_bus_publish_failures_total") == 0
        kit = await make_shop(srv.ctx.db)
        b = await buyer(srv, kit, connect)
        await b.send({"type": "message.send", "client_msg_id": "m0", "body": "hi"})
        await b.expect("message.ack")
        await b.expect("conversation.opened")  # from the node itself, at publish
        # Redis sends the node's envelope back (it holds the buyer's topic): counted, dropped.
        await wait_for(lambda: srv.ctx.bus.echoes >= 1, 10, "the node's own envelope back")
        m = await scrape(srv.http)
        assert value(m, "homing_bus_published_total") >= 1
        assert value(m, "homing_bus_received_total") >= value(m, "homing_bus_echoes_total") >= 1
        assert value(m, "homing_bus_subscriptions") >= 1
        redis.stop()
        await wait_for(lambda: not srv.ctx.bus.healthy, 10, "the bus to notice Redis is gone")
        await b.send({"type": "message.send", "client_msg_id": "m1", "body": "hello?"})
        await b.expect("message.ack")  # acks never wait for Redis
        m = await scrape(srv.http)
        assert value(m, "homing_bus_connected", bus="redis") == 0
        assert value(m, "homing_bus_publish_failures_total") >= 1
        assert value(m, "homing_bus_breaker_trips_total") >= 1
    finally:
        redis.stop()


async def test_metrics_token_is_required_when_set(start_server):
    srv = await start_server(run_jobs=False, HOMING_METRICS_TOKEN="scrape-s3cret")
    async with httpx.AsyncClient(base_url=srv.http) as c:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic scrape-s3cret"},
        ):
            r = await c.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["code"] == "unauthorized"
        schema = (await c.get("/openapi.json")).json()
    assert "/metrics" not in schema["paths"]
    m = await scrape(srv.http, Authorization="Bearer scrape-s3cret")
    assert value(m, "homing_bus_connected", bus="memory") == 1


async def test_metrics_without_a_token_answer_loopback_only(server):
    await scrape(server.http)  # this machine, directly
    async with httpx.AsyncClient(base_url=server.http) as c:
        # Through a reverse proxy on this machine the peer is loopback, but the caller is not.
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            r = await c.get("/metrics", headers={header: "203.0.113.9"})
            assert r.status_code == 404, header
            assert r.json()["error"]["code"] == "not_found"


@pytest.fixture(scope="module")
async def json_node(database_url):
    """`homing serve` on every address, logging JSON at info (access lines on)."""
    node = NodeProcess(
        {"DATABASE_URL": database_url, "HOMING_LOG_FORMAT": "json"},
        host="0.0.0.0",
        log_level="info",
    )
    await node.start()
    yield node
    node.stop()


async def test_metrics_without_a_token_refuse_another_machine(json_node):
    outside = f"http://{outside_address()}:{json_node.port}"  # the peer address is not loopback
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{outside}/metrics")
        assert r.status_code == 404
        assert (await c.get(f"{outside}/healthz")).status_code == 200
    await scrape(json_node.http)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log, each a JSON object with the common fields (else the test fails)."""
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "message"}, line
        assert datetime.fromisoformat(line["time"]).utcoffset() == UTC.utcoffset(None)
    return lines


async def test_json_logs_name_each_request_and_socket(json_node, server):
    kit = await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=json_node.http) as c:
        mine = await c.get("/healthz", headers={"X-Request-ID": "probe-7f3a"})
        assert mine.headers["x-request-id"] == "probe-7f3a"
        odd = await c.get("/healthz", headers={"X-Request-ID": 'no "quotes" or spaces'})
        made = odd.headers["x-request-id"]
        assert made and made != 'no "quotes" or spaces'
        fresh = (await c.get("/healthz")).headers["x-request-id"]
        assert fresh and fresh != made
    clients = [
        await WSClient.connect(f"{json_node.ws}/ws/buyer?token={kit.buyer_token()}")
        for _ in range(2)
    ]
    try:
        for b in clients:
            await b.expect("hello")
    finally:
        for b in clients:
            await b.close()

    def accepted() -> list[dict[str, Any]]:
        return [
            line
            for line in json_lines(json_node.log.read_text())
            if "/ws/buyer" in line["message"] and "accepted" in line["message"]
        ]

    await wait_for(lambda: len(accepted()) >= 2, 10, "both sockets' lines in the log")
    lines = json_lines(json_node.log.read_text())
    by_request = {
        line.get("request_id"): line for line in lines if line["logger"] == "uvicorn.access"
    }
    for rid in ("probe-7f3a", made, fresh):
        line = by_request[rid]
        assert line["level"] == "INFO" and line["path"] == "/healthz" and line["status"] == 200
    socket_ids = {line.get("connection_id") for line in accepted()}
    assert len(socket_ids) == 2 and None not in socket_ids  # one id a socket
    assert all(line["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") for line in lines)
    assert any(
        line["logger"] == "app.cli" and "Homing is running" in line["message"] for line in lines
    )


def test_the_worker_logs_json_and_serves_its_jobs_metrics(database_url, tmp_path):
    """`homing worker` runs the jobs in a deployment of several nodes: its logs are JSON
    like the server's, and `--metrics-port` shows when each job last succeeded."""
    log = tmp_path / "worker.log"
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "HOMING_LOG_FORMAT": "json"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "worker",
                "--log-level",
                "info",
                "--metrics-port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "worker running" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        while True:  # every job runs once at start; the first that finishes shows its time
            r = httpx.get(
                f"http://127.0.0.1:{port}/metrics", headers={"X-Request-ID": "worker-scrape"}
            )
            assert r.status_code == 200
            jobs = {
                s.labels["job"]: s.value
                for family in text_string_to_metric_families(r.text)
                for s in family.samples
                if s.name == "homing_job_last_success_timestamp_seconds"
            }
            assert set(jobs) == {job.name for job in registered_jobs()}
            if any(jobs.values()):
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.1)
        assert all(0 <= at <= time.time() for at in jobs.values())
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0, log.read_text()[-2000:]
    lines = json_lines(log.read_text())
    assert any(
        line["logger"] == "app.worker" and line["message"].startswith("worker running")
        for line in lines
    )
    assert any(
        line.get("request_id") == "worker-scrape" and line["logger"] == "uvicorn.access"
        for line in lines
    )


def test_json_formatter_keeps_exceptions_and_masks_secrets():
    try:
        raise ValueError("bad link /ws/buyer?token=eyJ.secret.sig")
    except ValueError:
        record = logging_record("opening /x?ticket=t-123 failed", exc_info=sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "opening /x?ticket=*** failed"
    assert (
        "Traceback" in line["exception"]
        and "ValueError: bad link /ws/buyer?token=***" in line["exception"]
    )
    assert "eyJ.secret.sig" not in json.dumps(line)


def logging_record(msg: str, exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("app.test", logging.ERROR, __file__, 1, msg, None, exc_info)
