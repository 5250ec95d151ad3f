"""Suite-wide settings: headless matplotlib and one torch thread per test.

On a busy 2-core machine (CI runs 2 pytest-xdist workers) OpenMP threads waiting for each other make
tiny matrix products ~100x slower, so every test runs with one thread (restored afterwards, in case
a test changes it).
"""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
