"""Two separate processes, 25 threads each, deciding the same action on PostgreSQL: it executes exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import func, select

from mopsbot.approvals.policy import ApprovalPolicy
from mopsbot.store.db import Store
from mopsbot.store.models import ActionExecution, PendingAction
from tests.approvals.helpers import propose

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    url, action_id, runs_file, tools = sys.argv[1:5]
    sys.path.insert(0, str(Path(tools).parent))
    from mopsbot.approvals.decide import AlreadyDecided
    from mopsbot.approvals.policy import ApprovalPolicy
    from mopsbot.store.db import Store
    from tests.approvals.helpers import decide

    store, policy = Store.open(url, migrate=False), ApprovalPolicy.load(Path(tools))

    def execute(payload, action):
        with open(runs_file, "a") as f:  # one line per execution, across both processes
            f.write(payload + "\\n")
        return {"ok": True}

    barrier = threading.Barrier(25)
    won = []

    def worker():
        barrier.wait()
        try:
            decide(store, policy, action_id, "U07DW0001", "approve", executors={"change_request": execute})
            won.append(1)
        except AlreadyDecided:
            pass

    threads = [threading.Thread(target=worker) for _ in range(25)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(len(won))
    """
)


def test_two_processes_on_postgres_execute_once(postgres_url: str, tmp_path: Path) -> None:
    store = Store.open(postgres_url)
    policy = ApprovalPolicy.load(REPO / "tools")
    action = propose(
        store, policy, kind="change_request", payload={"title": "x"}, summary="x", risk="medium", requester="U07SC0005"
    )
    runs = tmp_path / "runs.txt"
    args = [sys.executable, "-c", WORKER, postgres_url, action.id, str(runs), str(REPO / "tools")]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    wins = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(wins) == 1
    assert runs.read_text().splitlines() == ['{"title":"x"}']
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(ActionExecution)) == 1
        assert s.get(PendingAction, action.id).status == "executed"  # type: ignore[union-attr]
