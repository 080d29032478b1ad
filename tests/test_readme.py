"""The README's library example runs as written."""

import os
import re
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_python_example_runs():
    text = open(os.path.join(ROOT, "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    namespace = {}
    with warnings.catch_warnings():
        # e.g. Keras' "`shuffle=True` was passed, but will be ignored".
        warnings.filterwarnings("error", message=".*ignored", module="keras")
        warnings.filterwarnings("error", message=".*shuffle")
        exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    x, x_adv, eps = namespace["x"], namespace["x_adv"], namespace["eps"]
    dist = np.linalg.norm((x_adv.numpy() - x[:100]).reshape(100, -1), axis=1)
    assert np.all(dist <= eps * (1 + 1e-5))
    assert 0.0 <= namespace["acc"] <= 1.0
    surface = namespace["surface"]
    assert surface.shape == (2, 2) and 0.0 <= namespace["auc"] <= 1.0
    # The joint attack cannot raise accuracy above the clean one.
    assert surface[1, 1] <= surface[0, 0]


def test_readme_commands_are_the_ci_commands():
    readme = open(os.path.join(ROOT, "README.md")).read()
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert 'pip install -e ".[test]" && python -m pytest -q' in readme
    assert "python -m pytest -q" in ci and '-e ".[test]"' in ci
