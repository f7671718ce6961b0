"""Parallel tests (`make test` runs pytest-xdist workers): each worker gets its share of the cores for torch and for the
processes it starts, so that two workers never run four threads on two cores."""
import os

def pytest_configure(config):
    n = getattr(config, 'workerinput', {}).get('workercount')
    if not n: return
    share = str(max(1, (os.cpu_count() or 1)//int(n)))
    for v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ.setdefault(v, share)
    import torch
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))
