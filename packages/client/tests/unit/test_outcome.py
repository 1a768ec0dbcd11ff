"""The outcome table: which failures are definite, which are unknown, and retries."""

from __future__ import annotations

import pytest

from rift_client import errors
from rift_client.errors import ClientError, ClientTimeout, ConnectionLost, for_code
from rift_client.outcome import Action, DeliveryReport, RetryPolicy, status_of

# (code, retriable, definite for a write, refresh metadata)
TABLE = [
    (3, True, True, True),  # UNKNOWN_TOPIC_OR_PARTITION
    (5, True, True, True),  # LEADER_NOT_AVAILABLE
    (6, True, True, True),  # NOT_LEADER_OR_FOLLOWER: rejected before the append
    (74, True, True, True),  # FENCED_LEADER_EPOCH
    (75, True, True, True),  # UNKNOWN_LEADER_EPOCH
    (19, True, True, False),  # NOT_ENOUGH_REPLICAS: checked before the append
    (20, True, False, False),  # NOT_ENOUGH_REPLICAS_AFTER_APPEND: it is in the log
    (7, True, False, False),  # REQUEST_TIMED_OUT: acks=all replication timed out
    (13, True, False, True),  # NETWORK_EXCEPTION
    (-1, False, False, False),  # UNKNOWN_SERVER_ERROR
    (10, False, True, False),  # MESSAGE_TOO_LARGE
    (45, False, True, False),  # OUT_OF_ORDER_SEQUENCE_NUMBER
    (47, False, True, False),  # INVALID_PRODUCER_EPOCH
    (36, False, True, False),  # TOPIC_ALREADY_EXISTS
]


@pytest.mark.parametrize(("code", "retriable", "definite", "refresh"), TABLE)
def test_error_table(code: int, retriable: bool, definite: bool, refresh: bool) -> None:
    error = for_code(code)
    assert isinstance(error, errors.KafkaError)
    assert error.code == code
    assert (error.retriable, error.definite, error.invalid_metadata) == (
        retriable,
        definite,
        refresh,
    )
    assert str(code) in str(error)


def test_unlisted_codes_are_unknown_and_use_kios_retriability() -> None:
    error = for_code(70)  # FETCH_SESSION_ID_NOT_FOUND, retriable in kio
    assert error.retriable
    assert not error.definite
    assert error.code == 70
    assert type(for_code(70)) is type(error)
    assert for_code(30000).code == 30000


def test_definite_can_be_overridden_per_instance() -> None:
    assert for_code(7, definite=True).definite
    assert ConnectionLost("x", definite=True).definite
    assert not ConnectionLost("x").definite
    assert isinstance(ClientTimeout("x"), TimeoutError)


POLICY = RetryPolicy(backoff=0.1, backoff_max=1.0, deadline=10.0)


def decide(error: ClientError, *, attempts: int = 1, maybe_applied: bool = False, now: float = 0.0):
    return POLICY.decide(
        error, attempts=attempts, started_at=0.0, maybe_applied=maybe_applied, now=now
    )


def test_not_leader_retries_with_metadata_refresh() -> None:
    d = decide(for_code(6))
    assert d.action is Action.RETRY
    assert d.refresh_metadata
    assert d.definite
    assert d.retry_at == pytest.approx(0.1)


def test_backoff_grows_and_is_capped() -> None:
    assert [POLICY.delay(n) for n in (1, 2, 3, 4, 5, 10)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )


def test_deadline_turns_retry_into_failure() -> None:
    d = decide(for_code(6), now=9.95)
    assert d.action is Action.FAIL
    assert d.definite


def test_unknown_attempt_makes_final_failure_unknown() -> None:
    # timed out once, then the new leader says "not leader": the first may have landed
    d = decide(for_code(6), maybe_applied=True, now=9.95)
    assert d.action is Action.FAIL
    assert not d.definite


def test_timeout_is_never_a_definite_failure() -> None:
    d = decide(ClientTimeout("slow"), now=9.99)
    assert d.action is Action.FAIL
    assert not d.definite


def test_non_retriable_fails_at_once() -> None:
    d = decide(for_code(10))
    assert d.action is Action.FAIL
    assert d.definite


def test_connection_never_written_is_definite() -> None:
    d = decide(ConnectionLost("refused", definite=True), now=9.99)
    assert d.action is Action.FAIL
    assert d.definite


def test_report_status() -> None:
    ok = DeliveryReport(topic="t", partition=0, ok=True, definite=True, offset=3)
    fail = DeliveryReport(topic="t", partition=0, ok=False, definite=True)
    info = DeliveryReport(topic="t", partition=0, ok=False, definite=False)
    assert (ok.status, fail.status, info.status) == ("ok", "fail", "info")


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff=1.0, backoff_max=0.5)


def test_status_of_raised_errors() -> None:
    assert status_of(for_code(6)) == "fail"
    assert status_of(for_code(7)) == "info"
    assert status_of(ClientTimeout("slow")) == "info"
    assert status_of(ConnectionLost("refused", definite=True)) == "fail"
    assert status_of(RuntimeError("bug")) == "info"
