from pathlib import Path

import pytest

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import is_uri
from fl_saliency.sweep.storage import Storage, scratch_folder
from helpers import run_main

def make_run(folder: Path) -> None:
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "progress.csv").write_text("nupdates\n1\n")
    (folder / "checkpoint.pt").write_bytes(b"\0" * 3000)
    (folder / "config.json").write_text("{}")
    (folder / ".config.json.abc.tmp").write_text("a killed writer's leftover")


@pytest.mark.parametrize("uri", [False, True])
def test_upload_mirrors_a_folder_and_download_brings_it_back(tmp_path, uri):
    location = f"file://{tmp_path}/store" if uri else str(tmp_path / "store")
    storage = Storage(location)
    assert storage.is_remote == uri and storage.fs.type_name == "local"
    run = tmp_path / "run"
    make_run(run)
    storage.upload(run, "Breakout.cnn/01")
    assert storage.files("Breakout.cnn/01") == {"logs/progress.csv": 11, "checkpoint.pt": 3000, "config.json": 2}
    assert not list((tmp_path / "store").rglob("*.tmp"))

    (run / "config.json").unlink()
    (run / "logs" / "progress.csv").write_text("nupdates\n1\n2\n")
    storage.upload(run, "Breakout.cnn/01")
    assert storage.files("Breakout.cnn/01") == {"logs/progress.csv": 13, "checkpoint.pt": 3000}

    back = tmp_path / "back"
    assert storage.download("Breakout.cnn/01", back, skip=("*.pt",)) == ["logs/progress.csv"]
    assert (back / "logs" / "progress.csv").read_text() == "nupdates\n1\n2\n"
    assert storage.files("no/such/folder") == {}


def test_upload_writes_changed_files_only_and_last_names_after_the_rest(tmp_path, monkeypatch):
    storage = Storage(f"file://{tmp_path}/store")
    run = tmp_path / "run"
    make_run(run)
    written = []
    original = Storage._write
    monkeypatch.setattr(Storage, "_write", lambda self, key, fill: (written.append(key), original(self, key, fill)))
    storage.upload(run, "job", last=("checkpoint.pt",))
    assert written == ["job/config.json", "job/logs/progress.csv", "job/checkpoint.pt"]
    written.clear()
    storage.upload(run, "job", last=("checkpoint.pt",))
    assert written == []
    (run / "logs" / "progress.csv").write_text("nupdates\n1\n2\n")
    storage.upload(run, "job", last=("checkpoint.pt",))
    assert written == ["job/logs/progress.csv"]


def test_write_bytes_is_atomic_on_local_storage(tmp_path, monkeypatch):
    storage = Storage(f"file://{tmp_path}/store")
    storage.write_bytes("sweep.json", b"old")

    def failing(out):
        out.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        storage._write("sweep.json", failing)
    assert storage.read_bytes("sweep.json") == b"old"
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["sweep.json"]


def test_uris_and_scratch_folders(tmp_path, monkeypatch):
    assert is_uri("s3://bucket/x") and is_uri("file:///tmp/x") and is_uri("gs://b")
    assert not is_uri("/tmp/x") and not is_uri("runs/file:x") and not is_uri("C:/x")
    monkeypatch.setenv("FL_SALIENCY_SCRATCH", str(tmp_path / "scratch"))
    a, b = scratch_folder("s3://bucket/a", "G.cnn/01"), scratch_folder("s3://bucket/b/", "G.cnn/01")
    assert a.parent.parent.parent == tmp_path / "scratch" and a != b
    assert scratch_folder("s3://bucket/a/", "G.cnn/01") == a
    with pytest.raises(FlSaliencyError, match="storage nope://x: Unrecognized filesystem type"):
        Storage("nope://x")


def test_local_only_flags_refuse_a_uri_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["train", "--output-dir", "file:///tmp/x", "--network", "cnn"],
                 ["report", str(tmp_path), "--output-dir", "s3://bucket/x"]):
        code, stderr = run_main(capsys, args)
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert "not the URI" in stderr
    assert not (tmp_path / "file:").exists()
