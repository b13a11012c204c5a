"""The report's figures (fl_saliency/report/plots.py)."""


def captured_figure(monkeypatch):
    """The figure a plot function closes, kept open for the test to measure."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    return figures


def test_aggregate_plot_ticks_do_not_overlap_and_have_no_offset_text(tmp_path, monkeypatch):
    from fl_saliency.report.aggregate import Estimate
    from fl_saliency.report.plots import plot_aggregates

    figures = captured_figure(monkeypatch)
    estimates = {"cnn": {"IQM": Estimate(0.7352345, None), "mean": Estimate(123456.789, (120000.0, 130000.5)),
                         "optimality gap": Estimate(0.0001234, (0.0001, 0.00015))},
                 "cnn_sparse_fls_pool": {"IQM": Estimate(0.73526, None), "mean": Estimate(125000.0, (121000.0, 131000.0)),
                                         "optimality gap": Estimate(0.0001334, (0.00011, 0.00016))}}
    plot_aggregates(estimates, "human-normalised score", tmp_path / "a.png")
    (fig,) = figures
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert ax.xaxis.get_offset_text().get_text() == ""  # no "1e-5+7.352e-1" under the axis
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_visible() and t.get_text()
                 and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
        assert len(boxes) >= 2
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), [t.get_text() for t in ax.get_xticklabels()]
        label = ax.xaxis.label.get_window_extent(renderer)
        assert all(box.y0 > label.y1 for box in boxes)  # the axis label below the ticks, not on them


def test_profile_plot_uses_the_other_plots_font_sizes(tmp_path, monkeypatch):
    from fl_saliency.report import aggregate
    from fl_saliency.report.plots import plot_profiles

    figures = captured_figure(monkeypatch)
    matrices = aggregate.build_matrices({("Breakout", "cnn"): [0.2, 0.5, 0.9], ("Breakout", "cnn_daqn"): [0.1, 0.4, 0.3]})
    plot_profiles(aggregate.performance_profiles(matrices, reps=50), tmp_path / "p.png")
    (fig,) = figures
    (ax,) = fig.axes
    texts = [ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels(),
             *ax.get_legend().get_texts()]
    assert max(t.get_fontsize() for t in texts) <= 10  # matplotlib's default ticks; rliable's x-large is 17.28


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path):
    from fl_saliency.report.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number) and [p.name for p in tmp_path.iterdir()] == ["f.png"]
