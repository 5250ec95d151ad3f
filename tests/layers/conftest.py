"""One torch thread per test: on a busy 2-core machine (CI runs 2 workers) OpenMP threads waiting
for each other make tiny matrix products ~100x slower."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
