"""`coursehub loadtest` arguments: caps refused with a clear message, the target/token guard."""

from __future__ import annotations

import argparse

import pytest

from coursehub.cli import build_parser
from coursehub.loadtest import cli


def parse(*argv: str) -> argparse.Namespace:
    return build_parser("loadtest").parse_args(["loadtest", *argv])


def refused(capsys: pytest.CaptureFixture, *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        parse(*argv)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("45", 45),
                                               ("0", 0), ("2.5m", 150)])
def test_durations(text: str, seconds: float) -> None:
    assert cli.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "five minutes", "5x", "-5m", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [("200KB", 200_000), ("200kb", 200_000), ("1MiB", 2**20),
                                            ("4096", 4096), ("1.5MB", 1_500_000)])
def test_sizes(text: str, size: int) -> None:
    assert cli.parse_size(text) == size


def test_defaults_and_values() -> None:
    args = parse("deadline", "--students", "1000", "--over", "15m", "--size", "200KB")
    assert (args.scenario, args.students, args.over, args.size) == ("deadline", 1000, 900, 200_000)
    args = parse("lecture-start", "--users", "20", "--over", "5m")
    assert (args.scenario, args.users, args.over, args.keep_servers) == ("lecture-start", 20, 300, False)


@pytest.mark.parametrize(("argv", "message"), [
    (("lecture-start", "--users", "0"), "0 is outside 1..500"),
    (("lecture-start", "--users", "100000"), "100000 is outside 1..500"),
    (("lecture-start", "--users", "many"), "'many' is not a whole number"),
    (("lecture-start", "--users", "2", "--over", "3h"), "3h is outside 0s..60m"),
    (("deadline", "--students", "5001"), "5001 is outside 1..5000"),
    (("deadline", "--students", "5", "--over", "1d"), "'1d' is not a duration"),
    (("deadline", "--students", "5", "--size", "1GB"), "1GB is outside"),
    (("deadline", "--students", "5", "--size", "10"), "10 is outside"),
    (("deadline", "--students", "5", "--concurrency", "100000"), "outside 1..512"),
    (("deadline", "--students", "5", "--grace", "5h"), "5h is outside"),
    (("deadline",), "--students"),
])
def test_absurd_values_are_refused(capsys: pytest.CaptureFixture, argv: tuple, message: str) -> None:
    assert message in refused(capsys, *argv)


def test_loopback_needs_no_token() -> None:
    assert cli.check_target(parse("deadline", "--students", "5")) == []
    assert cli.check_target(parse("deadline", "--students", "5", "--target", "http://127.0.0.1:8000")) == []
    assert cli.check_target(parse("deadline", "--students", "5", "--target", "http://localhost:8000",
                                  "--course", "demo-101")) == []


def test_another_host_needs_an_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.ADMIN_TOKEN_ENV, raising=False)
    problems = cli.check_target(parse("lecture-start", "--users", "2", "--target", "https://hub.example.edu/"))
    assert any("admin token" in p for p in problems)


def test_admin_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.ADMIN_TOKEN_ENV, "secret")
    flags = ["--platform-key", "k.pem", "--issuer", "https://lms", "--client-id", "c", "--deployment-id", "d",
             "--context-id", "x", "--course", "demo-101"]
    args = parse("deadline", "--students", "5", "--target", "https://hub.example.edu/", *flags)
    assert args.admin_token == "secret"
    assert cli.check_target(args) == []


def test_another_host_needs_the_whole_test_lms(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse("deadline", "--students", "5", "--target", "https://hub.example.edu/", "--admin-token", "t",
                 "--issuer", "https://lms")
    problems = cli.check_target(args)
    assert len(problems) == 1 and "--platform-key" in problems[0] and "--issuer" not in problems[0]


def test_lms_flags_need_a_target() -> None:
    args = parse("deadline", "--students", "5", "--issuer", "https://lms")
    assert any("need --target" in p for p in cli.check_target(args))


def test_not_a_url() -> None:
    assert "not an http(s) URL" in cli.check_target(parse("deadline", "--students", "5", "--target", "hub"))[0]


@pytest.mark.parametrize(("url", "loopback"), [("http://127.0.0.1:8000", True), ("http://127.8.0.1", True),
                                               ("http://[::1]:80/", True), ("http://localhost", True),
                                               ("http://10.0.0.1", False), ("https://127.0.0.1.example.com", False)])
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert cli.is_loopback_url(url) is loopback


def test_run_refuses_before_touching_anything(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv(cli.ADMIN_TOKEN_ENV, raising=False)
    args = parse("deadline", "--students", "5", "--target", "http://192.0.2.1:8000")
    assert cli.run(args) == 2
    assert "not this machine" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "direct"), [
    (("deadline", "--students", "5"), True),  # as the user servers submit: to the service's own address
    (("deadline", "--students", "5", "--through-proxy"), False),
    (("deadline", "--students", "5", "--target", "http://127.0.0.1:8123"), False),  # another hub: its proxy
    (("lecture-start", "--users", "2"), False),  # opens pages through the hub, as a browser does
])
def test_where_the_exchange_requests_go(tmp_path, argv: tuple, direct: bool) -> None:
    from support.local_state import write_local_state

    from coursehub.platform.settings import Settings

    sc, _ = cli._scenario(parse(*argv, "--state-dir", str(write_local_state(tmp_path))))
    expected = f"http://127.0.0.1:{Settings().grading.port}/services/grading/" if direct else None
    assert sc.service_url == expected
