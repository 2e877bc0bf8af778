"""Progress bars: tqdm on a terminal, a few plain lines in a log written to a file."""
import io

from tqdm import tqdm

from kitpose import progress as progress_module
from kitpose.progress import LINES_PER_BAR, LineProgress, progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_redirected_bar_writes_one_plain_line_per_tenth():
    stream = io.StringIO()
    bar = progress(range(1000), desc="epoch 3 (of 9)", unit="batch", stream=stream)
    for index, _ in enumerate(bar):
        bar.set_postfix(loss=f"{index:.3e}")
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert len(lines) == LINES_PER_BAR == 10
    assert lines[0].startswith("epoch 3 (of 9): 10% (100/1000 batch, ")
    assert lines[-1].startswith("epoch 3 (of 9): 100% (1000/1000 batch, ") and lines[-1].endswith("loss=9.990e+02")
    # tqdm itself, on the same kind of stream, redraws far more often than that
    tqdm_stream = io.StringIO()
    for _ in tqdm(range(1000), file=tqdm_stream, mininterval=0, miniters=1):
        pass
    assert tqdm_stream.getvalue().count("\r") > 100


def test_short_loop_writes_no_more_lines_than_items():
    stream = io.StringIO()
    list(progress([1, 2, 3], desc="eval", stream=stream))
    assert [line.split(" (")[0] for line in stream.getvalue().splitlines()] == ["eval: 33%", "eval: 67%", "eval: 100%"]


def test_unknown_total_writes_at_most_one_line_a_minute_and_one_at_close(monkeypatch):
    stream = io.StringIO()
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    bar = progress(total=None, desc="infer", unit="frame", stream=stream)
    for _ in range(30):
        now[0] += 5.0            # 150 s in all: lines at 60 s and 120 s
        bar.update(1)
    bar.close()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines == ["infer: 12 frame in 60 s (0.2 frame/s)", "infer: 24 frame in 120 s (0.2 frame/s)",
                     "infer: 30 frame in 150 s (0.2 frame/s)"]


def test_disabled_bar_writes_nothing_but_still_iterates():
    stream = io.StringIO()
    assert list(progress(range(5), stream=stream, disable=True)) == list(range(5))
    assert stream.getvalue() == ""


def test_terminal_gets_a_tqdm_bar():
    terminal = _Terminal()
    bar = progress(range(3), desc="eval", stream=terminal)
    assert isinstance(bar, tqdm)
    assert list(bar) == [0, 1, 2]
    assert isinstance(progress(range(3), stream=io.StringIO()), LineProgress)
