"""The demo's refusals (its whole run is the README's Quick start, minutes long: not run here)."""

from fl_saliency.cli import main


def test_output_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert main(["demo", "--output-dir", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err == (f"fl-saliency: error: output folder {tmp_path / 'file'} is a file (or lies "
                                       "under one); name a folder\n")
    assert main(["demo", "--output-dir", str(tmp_path / "file" / "demo")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and (tmp_path / "file").read_text() == "mine"


def test_read_only_output_dir_is_one_line(read_only_dir, capsys):  # noqa: F811 (the fixture imported above)
    assert main(["demo", "--output-dir", str(read_only_dir / "demo")]) == 2
    assert capsys.readouterr().err == (f"fl-saliency: error: cannot write to output folder {read_only_dir / 'demo'}: "
                                       "Read-only file system\n")
    assert list(read_only_dir.iterdir()) == []
