"""sweep.json: what each job of a sweep did, where, and what it cost, kept in the sweep's storage.

Per job: status, the node of its last stage, attempts (starts, retries included, over every run of the sweep),
seconds (summed over its stages and attempts), agent steps/s of its last training stage, and the stages.
The driver is its only writer; it rewrites the file (atomically) as events arrive, so a rerun of the sweep adds
to it and ``report`` shows its totals.
"""

from __future__ import annotations

import json

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.sweep.storage import Storage

MANIFEST_FILE = "sweep.json"


def read_manifest(storage: Storage) -> dict | None:
    if not storage.exists(MANIFEST_FILE):
        return None
    try:
        data = json.loads(storage.read_bytes(MANIFEST_FILE))
        if not isinstance(data.get("jobs"), dict):
            raise ValueError("no 'jobs' object")
    except (ValueError, AttributeError) as exc:
        raise FlSaliencyError(f"{storage.uri(MANIFEST_FILE)} is not a sweep manifest ({exc})") from None
    return data


def totals(jobs: dict[str, dict]) -> dict:
    """The manifest's totals: jobs by status, compute time, nodes used, training throughput."""
    by_status: dict[str, int] = {}
    for entry in jobs.values():
        by_status[entry["status"]] = by_status.get(entry["status"], 0) + 1
    seconds = sum(entry["seconds"] for entry in jobs.values())
    steps = sum(stage.get("agent_steps", 0) for entry in jobs.values() for stage in entry["stages"])
    training = sum(stage["seconds"] for entry in jobs.values() for stage in entry["stages"] if "agent_steps" in stage)
    return {
        "jobs": len(jobs),
        "by_status": dict(sorted(by_status.items())),
        "job_hours": round(seconds / 3600, 4),
        "attempts": sum(entry["attempts"] for entry in jobs.values()),
        "nodes": sorted({stage["node"] for entry in jobs.values() for stage in entry["stages"]}),
        "agent_steps": steps,
        "agent_steps_per_s": round(steps / training, 1) if training else None,
    }


class Manifest:
    """The driver's copy of sweep.json; ``stage`` and ``finish`` return the line to print."""

    def __init__(self, root):
        self.storage = Storage(root)
        self.data = read_manifest(self.storage) or {"jobs": {}}
        self.started: set[str] = set()
        self.seen: set[tuple[str, int]] = set()
        self.dirty = True

    def _entry(self, job: str) -> dict:
        return self.data["jobs"].setdefault(job, {"status": "pending", "node": None, "attempts": 0, "seconds": 0.0,
                                                  "agent_steps_per_s": None, "stages": []})

    def stage(self, event: dict) -> str | None:
        """Record a job's event (numbered ``n`` within its ``attempt``); None for one already recorded: a job's
        events arrive as they happen and again with its result."""
        if (event["attempt"], event["n"]) in self.seen:
            return None
        self.seen.add((event["attempt"], event["n"]))
        event = {k: v for k, v in event.items() if k not in ("attempt", "n")}
        entry, job, node = self._entry(event["job"]), event["job"], event["node"]
        self.dirty = True
        entry["node"] = node
        if event["stage"] == "started":
            entry["attempts"] += 1
            entry["status"] = "running"
            retry = job in self.started
            self.started.add(job)
            return f"{'retrying' if retry else 'started':>16}  {job}  on {node}" + (
                f" (attempt {entry['attempts']})" if retry else "")
        entry["seconds"] = round(entry["seconds"] + event["seconds"], 1)
        entry["stages"].append({k: v for k, v in event.items() if k != "job"})
        speed = ""
        if event.get("agent_steps_per_s") is not None:
            entry["agent_steps_per_s"] = event["agent_steps_per_s"]
            speed = f", {event['agent_steps_per_s']:g} agent steps/s"
        return f"{event['stage']:>16}  {job}  on {node}  ({event['seconds']} s{speed})"

    def finish(self, result: dict) -> str:
        entry = self._entry(result["job"])
        self.dirty = True
        entry["status"] = "done" if result["status"] == "skipped" else result["status"]  # finished before
        entry["message"] = result["message"].splitlines()[0] if result["message"] else ""
        return f"{result['status']:>16}  {result['job']}  ({result['seconds']} s): {entry['message']}"

    def save(self) -> None:
        if not self.dirty:
            return
        self.data["storage"] = self.storage.location
        self.data["totals"] = totals(self.data["jobs"])
        self.storage.write_bytes(MANIFEST_FILE, json.dumps(self.data, indent=1).encode())
        self.dirty = False
