"""Class 4 - concurrent approvals of one campaign name: distinct versions and files, nothing overwritten, UNIQUE
(campaign, version) holds - with threads in one replica and with two replicas on one database."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc

from tests.redteam.kit import (
    DANA,
    LENA,
    MARCUS,
    NINA,
    PRIYA,
    SAM,
    Rig,
    dig,
    table,
    yaml_files,
    yaml_value,
)

DRAFTERS = [LENA, SAM, NINA, LENA]
APPROVERS = [PRIYA, DANA, MARCUS, PRIYA]


def _propose(rig: Rig, n: int) -> list[str]:
    """n pending campaigns with the same generated name and distinguishable configs (budget)."""
    return [
        rig.propose_campaign(
            drafter=DRAFTERS[i % 4], budget=8000 + 100 * i, kpis=[{"metric": "mqls", "target": 150 + i}]
        )
        for i in range(n)
    ]


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at the same moment on threads; each result is the return value or the exception raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _assert_each_version_is_its_own_file(rig: Rig, aids: list[str]) -> None:
    versions = rig.versions()
    assert sorted(v["action_id"] for v in versions) == sorted(aids), versions
    numbers = [int(v["version"]) for v in versions]
    assert len(set(numbers)) == len(numbers), numbers
    assert len({str(v["path"]) for v in versions}) == len(versions)
    files = yaml_files(rig)
    assert len(files) == len(aids), sorted(files)
    for v in versions:  # each file still holds the config of the action its row names: nothing was overwritten
        body = files[f"v{v['version']}.yaml"]
        assert yaml_value(body, "budget") == dig(rig.get(v["action_id"])["payload"], "budget"), (v, body)


def test_four_concurrent_approvals_in_one_replica(db_rig: Rig) -> None:
    """Class 4: four approvers approve four versions of one campaign at the same instant on one replica."""
    aids = _propose(db_rig, 4)
    results = _race([lambda a=a, u=u: db_rig.decide(a, u) for a, u in zip(aids, APPROVERS, strict=True)])
    assert [getattr(r, "status", r) for r in results] == ["executed"] * 4
    _assert_each_version_is_its_own_file(db_rig, aids)


def test_concurrent_approvals_on_two_replicas(db_rig: Rig, make_rig: Callable[..., Rig]) -> None:
    """Class 4: two replicas on one database each approve different versions of one campaign at the same time."""
    other = make_rig(db_rig.url, data_dir=db_rig.data_dir)
    aids = _propose(db_rig, 4)
    replicas = [db_rig, other, db_rig, other]
    results = _race([lambda r=r, a=a, u=u: r.decide(a, u) for r, a, u in zip(replicas, aids, APPROVERS, strict=True)])
    assert [getattr(r, "status", r) for r in results] == ["executed"] * 4
    _assert_each_version_is_its_own_file(db_rig, aids)


def test_one_action_approved_on_two_replicas_at_once_runs_once(db_rig: Rig, make_rig: Callable[..., Rig]) -> None:
    """Class 4: Priya on replica A and Dana on replica B click Approve on the same card at the same instant."""
    other = make_rig(db_rig.url, data_dir=db_rig.data_dir)
    (aid,) = _propose(db_rig, 1)
    results = _race([lambda: db_rig.decide(aid, PRIYA), lambda: other.decide(aid, DANA)])
    from mopsbot.approvals import DecisionRefused

    refused = [r for r in results if isinstance(r, DecisionRefused)]
    won = [r for r in results if getattr(r, "status", None) == "executed"]
    assert len(refused) == 1 and len(won) == 1, results
    assert db_rig.executions(aid) == 1
    _assert_each_version_is_its_own_file(db_rig, [aid])


def test_a_pre_existing_file_at_the_next_version_path_is_not_overwritten(db_rig: Rig) -> None:
    """Class 4: a file planted at campaigns/<name>/v1.yaml before the first approval is overwritten."""
    folder = db_rig.campaign_dir()
    folder.mkdir(parents=True)
    planted = b"name: planted-by-attacker\nbudget: 1\n"
    (folder / "v1.yaml").write_bytes(planted)
    (aid,) = _propose(db_rig, 1)
    with contextlib.suppress(Exception):  # refusing to write is a fine defence
        db_rig.decide(aid, PRIYA)
    assert (folder / "v1.yaml").read_bytes() == planted
    for v in db_rig.versions():
        body = (folder / f"v{v['version']}.yaml").read_text()
        assert yaml_value(body, "budget") == 8000, (v, body)


def test_a_planted_next_version_after_a_real_one_is_not_overwritten(db_rig: Rig) -> None:
    """Class 4: after v1 is approved, an attacker plants v2.yaml; approving the next version overwrites it."""
    first, second = _propose(db_rig, 2)
    db_rig.decide(first, PRIYA)
    planted = b"name: planted-by-attacker\nbudget: 2\n"
    (db_rig.campaign_dir() / "v2.yaml").write_bytes(planted)
    with contextlib.suppress(Exception):
        db_rig.decide(second, DANA)
    assert (db_rig.campaign_dir() / "v2.yaml").read_bytes() == planted
    for v in db_rig.versions():
        body = (db_rig.campaign_dir() / f"v{v['version']}.yaml").read_text()
        assert yaml_value(body, "budget") == dig(db_rig.get(v["action_id"])["payload"], "budget"), (v, body)


def test_unique_campaign_version_holds_against_a_direct_insert(db_rig: Rig) -> None:
    """Class 4: an insider inserts a second row with an existing (campaign, version) into campaign_versions."""
    (aid,) = _propose(db_rig, 1)
    db_rig.decide(aid, PRIYA)
    with db_rig.engine.connect() as conn:
        t = table(conn, "campaign_versions")
        (row,) = [dict(r._mapping) for r in conn.execute(t.select())]
        pk = [c.name for c in t.primary_key.columns]
        duplicate = {k: v for k, v in row.items() if not (k in pk and k not in ("campaign", "version"))}
        duplicate["action_id"] = "forged-action"
        duplicate["path"] = str(db_rig.campaign_dir() / "v1-forged.yaml")
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            conn.execute(t.insert().values(**duplicate))
            conn.commit()


def test_a_symlink_at_the_next_version_path_does_not_redirect_the_write(rig: Rig, tmp_path: Path) -> None:
    """Class 4: v1.yaml is a symlink to a file outside the data dir; approving writes through it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = rig.campaign_dir()
    folder.mkdir(parents=True)
    (folder / "v1.yaml").symlink_to(victim)
    (aid,) = _propose(rig, 1)
    with contextlib.suppress(Exception):
        rig.decide(aid, PRIYA)
    assert victim.read_text() == "precious\n"
    assert (folder / "v1.yaml").is_symlink()
