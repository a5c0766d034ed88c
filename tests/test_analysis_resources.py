"""The analysis jobs' run-time requests follow the number of fits the config asks for."""

from synthshare.analysis.resources import FITS_PER_SECOND, MINIMUM_MINUTES, analysis_fits, runtime_minutes


def test_fits_count_the_paper_grid_per_job():
    # 16 parties x (R = 100 orders x 15 steps x K = 100 sets + local with and without ethnicity)
    assert analysis_fits(16, 15, 100, 100) == 16 * (100 * 15 * 100 + 2)


def test_request_covers_the_assumed_throughput_twice_and_doubles_per_retry():
    fits = analysis_fits(16, 15, 100, 100)
    first = runtime_minutes(16, 15, 100, 100)
    assert first * 60 >= 2 * fits / FITS_PER_SECOND
    assert runtime_minutes(16, 15, 100, 100, attempt=2) == 2 * first
    assert runtime_minutes(2, 1, 3, 4) == MINIMUM_MINUTES


def test_issue_16_additions_count_at_their_worst_case():
    base = analysis_fits(16, 15, 20, 50)
    assert analysis_fits(16, 15, 20, 50, real=True) == base + 16 * (20 * 15 + 1)
    # every candidate of every round: (15 + 14 + ... + 1) x K, the two single fits and the final K
    assert analysis_fits(16, 15, 20, 50, selection=True) == base + 16 * (50 * 120 + 2 + 50)
    assert runtime_minutes(16, 15, 20, 50, real=True, selection=True) >= runtime_minutes(16, 15, 20, 50)
