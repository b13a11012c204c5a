"""The public API (fl_saliency/__init__.py): every name documented, every docstring example run."""

import doctest
import subprocess
import sys
import typing

import pytest

import fl_saliency


def examples(obj) -> list[doctest.DocTest]:
    """The docstring's examples, run in the namespace of the module that defines ``obj``, as pytest would."""
    module = sys.modules[getattr(obj, "__module__", None) or obj.__name__]
    return [t for t in doctest.DocTestFinder(recurse=False).find(obj, module=module, globs=dict(vars(module)))
            if t.examples]


@pytest.mark.parametrize("name", [n for n in fl_saliency.__all__ if n != "__version__"])
def test_every_public_name_is_documented_and_its_examples_run(name):
    obj = getattr(fl_saliency, name)
    if isinstance(obj, dict) or typing.get_origin(obj) is not None:  # registries and signatures: the package's docstring
        assert f"``{name}``" in fl_saliency.__doc__
        return
    doc = obj.__doc__
    assert doc and doc.strip(), f"{name} has no docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in examples(obj):
        runner.run(test)
    assert runner.failures == 0


def test_the_package_docstring_example_runs():
    tests = examples(fl_saliency)
    assert tests and tests[0].examples
    runner = doctest.DocTestRunner()
    runner.run(tests[0])
    assert runner.failures == 0 and runner.tries >= 6


@pytest.mark.slow
def test_importing_the_package_loads_neither_torch_nor_the_commands():
    code = ("import sys, fl_saliency; print(sorted(m for m in ('torch', 'fl_saliency.methods', 'fl_saliency.agents') "
            "if m in sys.modules)); import fl_saliency.methods; print(callable(fl_saliency.explain), "
            "fl_saliency.explain.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # the function, also after its package was imported (which sets the package's attribute of that name)
    assert result.stdout.split("\n")[:2] == ["[]", "True fl_saliency.methods"]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'load_model'"):
        fl_saliency.load_model


def test_the_package_reads_as_the_pipeline_in_at_most_ten_modules():
    import pkgutil

    top = sorted(m.name for m in pkgutil.iter_modules(fl_saliency.__path__))
    assert top == ["agents", "cli", "common", "envs", "evaluation", "methods", "ppo", "report", "scoring", "sweep"]


@pytest.mark.parametrize("register, name, function, message", [
    ("register_method", "gradient", lambda *a: None, "'gradient' is a built-in saliency method; register yours"),
    ("register_method", "my method", lambda *a: None, "a saliency method name is letters, digits or '_', '-', got"),
    ("register_method", "mine", "not a function", "saliency method 'mine' is not callable"),
    ("register_metric", "nss", lambda *a: 0.0, "'nss' is a built-in gaze metric; register yours"),
    ("register_metric", "a/b", lambda *a: 0.0, "a gaze metric name is letters, digits or '_', '-', '.', got 'a/b'"),
])
def test_a_bad_registration_is_one_line_and_changes_nothing(register, name, function, message):
    from fl_saliency.common.errors import FlSaliencyError

    before = (dict(fl_saliency.METHODS), dict(fl_saliency.METRICS))
    with pytest.raises(FlSaliencyError, match=message):
        getattr(fl_saliency, register)(name, function)
    assert (fl_saliency.METHODS, fl_saliency.METRICS) == before


def test_score_refuses_bad_arguments_in_one_line_and_leaves_the_registry_alone():
    import numpy as np

    from fl_saliency.common.errors import FlSaliencyError

    maps, fixations = np.random.default_rng(0).random((2, 8, 8)), np.zeros((2, 8, 8), int)
    fixations[:, 3, 3] = 1
    for kwargs, message in [({"metric": "sauc", "sauc_mode": "bogus"}, "unknown sauc_mode 'bogus'"),
                            ({"sigma": -1.0}, "sigma is the blur in pixels, above 0; got -1.0"),
                            ({"metric": "nope"}, "unknown gaze metric 'nope'")]:
        with pytest.raises(FlSaliencyError, match=message):
            fl_saliency.score(maps, fixations, **kwargs)
    before = dict(fl_saliency.METRICS)
    hits = fl_saliency.score(maps, fixations, lambda s, g: float(g.fixations.ravel()[s.argmax()] > 0))
    np.testing.assert_array_equal(hits, [float(m.argmax() == 3 * 8 + 3) for m in maps])
    assert fl_saliency.METRICS == before  # a function is scored without being registered
