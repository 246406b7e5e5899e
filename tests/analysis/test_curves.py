"""Reading scalar logs for curves: a damaged log or one without series is
a clear error naming the file, not json's bare message."""
import json

import pytest

from efficientvit_mm.analysis.curves import plot_curves
from efficientvit_mm.analysis.logs import load_scalars
from efficientvit_mm.errors import UserError


def _log(tmp_path, lines):
    path = tmp_path / 'scalars.json'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_a_damaged_line_names_the_file_and_line(tmp_path):
    good = json.dumps(dict(lr=0.1, loss=1.0, iter=1, step=1))
    log = _log(tmp_path, [good, '{"loss": 0.9, "st'])
    with pytest.raises(ValueError, match=r'scalars.json, line 2, is not a'):
        load_scalars(log)
    with pytest.raises(UserError, match='line 2'):
        plot_curves([log], str(tmp_path / 'c.png'))


def test_a_log_without_series_says_so(tmp_path):
    log = _log(tmp_path, [json.dumps(dict(iter=1))])  # no step: no record
    with pytest.raises(UserError, match='hold no series'):
        plot_curves([log], str(tmp_path / 'c.png'))
    assert not (tmp_path / 'c.png').exists()
