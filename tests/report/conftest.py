import pytest


@pytest.fixture
def few_reps(monkeypatch):
    monkeypatch.setattr("fl_saliency.report.aggregate.REPS", 200)
