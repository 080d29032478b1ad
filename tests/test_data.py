"""Tests of nsr_tf.data: real MNIST and CIFAR-10, synthetic official files."""

import gzip
import os
import pickle  # only to craft a malicious file that must not run

import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import data
from nsr_tf.data import formats
from nsr_tf.data import preprocess

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
CIFAR_DIR = os.path.join(SHARED, "cifar10")
# Official label counts (LeCun et al.; torchvision / tfds metadata agree).
MNIST_TRAIN_COUNTS = [
    5923,
    6742,
    5958,
    6131,
    5842,
    5421,
    5918,
    6265,
    5851,
    5949,
]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def small_counts(monkeypatch):
    """Official counts of the small synthetic files written below."""
    monkeypatch.setattr(
        formats,
        "OFFICIAL_COUNTS",
        {
            "mnist": {"train": 600, "test": 600},
            "cifar10_batch": 4,
            "svhn": {"train": 600, "test": 600},
        },
    )


@pytest.fixture(scope="module")
def mnist_train():
    return data.load("mnist", "train")


def test_bundled_mnist_train_is_the_official_set(mnist_train):
    x, y = mnist_train
    assert x.shape == (60000, 28, 28, 1) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), MNIST_TRAIN_COUNTS)
    assert x.min() == 0.0 and x.max() == 1.0


def test_bundled_mnist_test_splits_500_plus_9500():
    xv, yv = data.load("mnist", "validation")
    xt, yt = data.load("mnist", "test")
    assert xv.shape == (500, 28, 28, 1) and xt.shape == (9500, 28, 28, 1)
    counts = np.bincount(np.concatenate([yv, yt]), minlength=10)
    np.testing.assert_array_equal(counts, MNIST_TEST_COUNTS)


def test_mnist_c2_matches_the_papers_value(mnist_train):
    # The SN paper's notebooks imply C2 ~ 9.22 on (55k) MNIST (spec §1).
    assert data.mean_l2_norm(mnist_train[0]) == pytest.approx(9.22, abs=0.02)


@pytest.mark.skipif(
    not os.path.isdir(CIFAR_DIR), reason="shared CIFAR-10 not present"
)
def test_official_cifar10_binary_from_shared_data():
    x, y = data.load("cifar10", "train", data_dir=CIFAR_DIR)
    assert x.shape == (50000, 28, 28, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), [5000] * 10)
    xv, _ = data.load("cifar10", "validation", data_dir=CIFAR_DIR)
    xt, _ = data.load("cifar10", "test", data_dir=CIFAR_DIR)
    assert len(xv) == 500 and len(xt) == 9500
    # C2 ~ 48.8 as the paper's eps = 0.05 C2 ~ 2.44 implies (spec §1).
    assert data.mean_l2_norm(x) == pytest.approx(48.8, abs=0.3)


def _raw_images(rng, n):
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _expected_color(images):
    """Independent reference: TF's per_image_standardization, then crop."""
    x = tf.image.per_image_standardization(
        tf.constant(images, tf.float32) / 255.0
    ).numpy()
    return x[:, 2:30, 2:30, :]


def test_standardization_matches_tensorflow_including_the_floor(rng):
    images = _raw_images(rng, 3)
    images[1] = 77  # constant image: std 0, floored at 1/sqrt(3072)
    x, _ = preprocess.preprocess("cifar10", images, np.zeros(3, np.uint8))
    np.testing.assert_allclose(x, _expected_color(images), atol=2e-5)
    assert np.all(x[1] == 0.0)


def _write_cifar_bin(directory, rng, n_per_batch=4):
    sub = os.path.join(directory, "cifar-10-batches-bin")
    os.makedirs(sub)
    written = {}
    for split, names in formats.CIFAR10_BIN_FILES.items():
        images, labels = [], []
        for name in names:
            img = _raw_images(rng, n_per_batch)
            lab = rng.integers(0, 10, n_per_batch).astype(np.uint8)
            chw = img.transpose(0, 3, 1, 2).reshape(n_per_batch, -1)
            records = np.concatenate([lab[:, None], chw], axis=1)
            records.astype(np.uint8).tofile(os.path.join(sub, name))
            images.append(img)
            labels.append(lab)
        written[split] = (np.concatenate(images), np.concatenate(labels))
    return written


def test_cifar10_binary_layout_is_chw_records(tmp_path, rng, small_counts):
    written = _write_cifar_bin(str(tmp_path), rng)
    images, labels = formats.read_cifar10_bin(
        str(tmp_path / "cifar-10-batches-bin"), "train"
    )
    np.testing.assert_array_equal(images, written["train"][0])
    np.testing.assert_array_equal(labels, written["train"][1])
    x, y = data.load("cifar10", "train", data_dir=str(tmp_path))
    np.testing.assert_allclose(
        x, _expected_color(written["train"][0]), atol=2e-5
    )
    np.testing.assert_array_equal(y, written["train"][1])


class _RunsCode:
    """Unpickling this runs ``open(marker, "w")``: the file must not load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_cifar10_python_version_is_refused_without_unpickling(tmp_path):
    sub = tmp_path / "cifar-10-batches-py"
    sub.mkdir()
    marker = tmp_path / "pwned"
    for name in formats.CIFAR10_PY_FILES["train"] + ("test_batch",):
        with open(sub / name, "wb") as f:
            pickle.dump({b"data": _RunsCode(str(marker))}, f)
    for source in ("files", "auto"):
        with pytest.raises(ValueError, match="cifar-10-batches-bin"):
            data.load("cifar10", "test", data_dir=str(tmp_path), source=source)
    assert not marker.exists()


def _write_svhn(directory, rng, n=600):
    from scipy import io as scipy_io

    out = {}
    for split in ("train", "test"):
        img = _raw_images(rng, n)
        lab = rng.integers(1, 11, n)  # official: digits 1..9 and 10 for 0
        scipy_io.savemat(
            os.path.join(directory, formats.SVHN_FILES[split]),
            {"X": img.transpose(1, 2, 3, 0), "y": lab[:, None]},
        )
        out[split] = (img, lab)
    return out


def test_svhn_mat_files_label_10_becomes_0(tmp_path, rng, small_counts):
    written = _write_svhn(str(tmp_path), rng)
    x, y = data.load("svhn", "test", data_dir=str(tmp_path))
    img, lab = written["test"]
    assert x.shape == (100, 28, 28, 3)
    np.testing.assert_allclose(x, _expected_color(img[500:]), atol=2e-5)
    np.testing.assert_array_equal(y, np.where(lab[500:] == 10, 0, lab[500:]))
    assert y.min() >= 0 and y.max() <= 9 and (lab == 10).any()


def test_mnist_idx_files_plain_and_gzipped(tmp_path, rng, small_counts):
    images = rng.integers(0, 256, size=(600, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 600).astype(np.uint8)

    for img_name, lab_name in formats.MNIST_FILES.values():
        with gzip.open(tmp_path / (img_name + ".gz"), "wb") as f:
            f.write(_idx(images))
        (tmp_path / lab_name).write_bytes(_idx(labels))  # not gzipped
    x, y = data.load("mnist", "test", data_dir=str(tmp_path), source="files")
    np.testing.assert_allclose(x[..., 0], images[500:] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y, labels[500:])


def test_tfds_source_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=520):
        x, y = data.load("svhn", "test", source="tfds")
        xm, _ = data.load("mnist", "validation", source="tfds")
    assert x.shape == (20, 28, 28, 3) and x.dtype == np.float32
    assert y.dtype == np.int64 and y.min() >= 0 and y.max() <= 9
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0.0, atol=0.1)
    assert xm.shape == (500, 28, 28, 1) and 0 <= xm.min() <= xm.max() <= 1


def test_random_labels_are_seeded_and_cover_every_split():
    _, y_train = data.load("mnist", "validation", random_labels=True, seed=100)
    _, y_again = data.load("mnist", "validation", random_labels=True, seed=100)
    _, y_other = data.load("mnist", "validation", random_labels=True, seed=1)
    _, y_true = data.load("mnist", "validation")
    np.testing.assert_array_equal(y_train, y_again)
    assert (y_train != y_other).mean() > 0.8
    assert (y_train == y_true).mean() < 0.2  # ~ chance, not the true labels
    assert set(np.unique(y_train)) == set(range(10))


def test_to_dataset_batches_and_drops_remainder():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10, dtype=np.int64)
    batches = list(data.to_dataset(x, y, batch_size=4, seed=3))
    assert [len(b[1]) for b in batches] == [4, 4]
    seen = np.concatenate([b[1].numpy() for b in batches])
    assert len(set(seen.tolist())) == 8
    np.testing.assert_array_equal(batches[0][0].numpy()[:, 0], batches[0][1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="imagenet", split="train"), "`name` must be one of"),
        (dict(name="mnist", split="val"), "`split` must be one of"),
        (
            dict(name="mnist", split="train", source="web"),
            "`source` must be one of",
        ),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


def test_files_source_without_files(tmp_path):
    with pytest.raises(ValueError, match="data_dir="):
        data.load("cifar10", "train", data_dir=str(tmp_path), source="files")


def test_bad_pipeline_arguments():
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="batch_size=0"):
        data.to_dataset(x, np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="len\\(y\\)=2"):
        data.to_dataset(x, np.zeros(2), batch_size=1)
    with pytest.raises(ValueError, match="at least one example"):
        data.mean_l2_norm(np.zeros((0, 3)))


def _idx(array):
    header = bytes([0, 0, 8, array.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + dims + array.tobytes()


def _write_mnist(directory, rng, n=600, n_labels=None):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n_labels or n).astype(np.uint8)
    for img_name, lab_name in formats.MNIST_FILES.values():
        with gzip.open(os.path.join(directory, img_name + ".gz"), "wb") as f:
            f.write(_idx(images))
        with open(os.path.join(directory, lab_name), "wb") as f:
            f.write(_idx(labels))


def _truncate(path, keep=0.5):
    raw = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(raw[: int(len(raw) * keep)])


def _corrupt_mnist_gz(d, rng):
    _write_mnist(d, rng)
    _truncate(os.path.join(d, formats.MNIST_FILES["test"][0] + ".gz"))
    return "mnist", "t10k-images-idx3-ubyte.*EOFError"


def _corrupt_mnist_counts(d, rng):
    _write_mnist(d, rng, n_labels=599)
    return "mnist", r"t10k-labels-idx1-ubyte.*\(599,\); expected \(600,\)"


def _corrupt_cifar_bin(d, rng):
    _write_cifar_bin(d, rng)
    path = os.path.join(d, "cifar-10-batches-bin", "test_batch.bin")
    with open(path, "ab") as f:
        f.write(b"\x00" * 100)  # a partial record
    return "cifar10", "test_batch.bin.*expected 12292 bytes.*received 12392"


def _corrupt_cifar_label(d, rng):
    _write_cifar_bin(d, rng)
    path = os.path.join(d, "cifar-10-batches-bin", "test_batch.bin")
    raw = bytearray(open(path, "rb").read())
    raw[0] = 200  # the first record's label byte
    open(path, "wb").write(bytes(raw))
    return "cifar10", r"Labels .* lie in \[\d+, 200\]"


def _corrupt_svhn(d, rng):
    _write_svhn(d, rng, n=8)
    _truncate(os.path.join(d, formats.SVHN_FILES["test"]), keep=0.3)
    return "svhn", "test_32x32.mat.*data_dir"


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_mnist_gz,
        _corrupt_mnist_counts,
        _corrupt_cifar_bin,
        _corrupt_cifar_label,
        _corrupt_svhn,
    ],
)
def test_truncated_or_corrupt_files_raise_a_clear_error(
    corrupt, tmp_path, rng, small_counts
):
    name, match = corrupt(str(tmp_path), rng)
    with pytest.raises(ValueError, match=match):
        data.load(name, "test", data_dir=str(tmp_path), source="files")


def test_tfds_failure_names_the_dataset_and_directory(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(ValueError, match="'svhn_cropped'.*no route to host"):
        data.load("svhn", "train", data_dir=str(tmp_path), source="tfds")


def _write_cifar_test_batch(directory, n_records):
    sub = os.path.join(directory, "cifar-10-batches-bin")
    os.makedirs(sub)
    records = np.zeros((n_records, formats.CIFAR10_RECORD_BYTES), np.uint8)
    records.tofile(os.path.join(sub, "test_batch.bin"))


def test_cifar10_batch_cut_to_4000_records_is_refused(tmp_path):
    _write_cifar_test_batch(str(tmp_path), 4000)
    match = (
        "test_batch.bin.*expected 30730000 bytes.*10000 records.*"
        "received 12292000 bytes.*4000 records"
    )
    for source in ("files", "auto"):
        with pytest.raises(ValueError, match=match):
            data.load("cifar10", "test", data_dir=str(tmp_path), source=source)


def test_files_source_never_falls_back_to_the_bundled_mnist(tmp_path):
    with pytest.raises(ValueError, match="No official mnist files.*data_dir="):
        data.load("mnist", "test", data_dir=str(tmp_path), source="files")
    with pytest.raises(ValueError, match="does not exist"):
        data.load(
            "mnist", "test", data_dir=str(tmp_path / "no"), source="files"
        )
    # An incomplete directory (train files only) names what is missing, for
    # every source that reads files.
    _write_mnist(str(tmp_path), np.random.default_rng(0), n=3)
    for name in formats.MNIST_FILES["test"]:
        for suffix in ("", ".gz"):
            if os.path.exists(tmp_path / (name + suffix)):
                os.remove(tmp_path / (name + suffix))
    for source in ("files", "auto"):
        with pytest.raises(
            ValueError,
            match="missing t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
        ):
            data.load("mnist", "test", data_dir=str(tmp_path), source=source)
    assert data.describe_source("mnist") == "bundled:mnist"
    assert (
        data.describe_source("mnist", data_dir=str(tmp_path), source="files")
        == "files:mnist"
    )


@pytest.mark.parametrize(
    "shape, match",
    [
        ((600, 28, 28), r"shape \(600, 28, 28\); expected \(10000, 28, 28\)"),
        ((10000, 28, 27), r"expected \(10000, 28, 28\)"),
    ],
)
def test_mnist_header_must_give_the_official_shape(tmp_path, shape, match):
    for img_name, lab_name in formats.MNIST_FILES.values():
        images = np.zeros(shape, np.uint8)
        (tmp_path / img_name).write_bytes(_idx(images))
        (tmp_path / lab_name).write_bytes(_idx(np.zeros(shape[0], np.uint8)))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*" + match):
        data.load("mnist", "test", data_dir=str(tmp_path), source="files")


def test_mnist_idx_content_size_must_match_its_header(tmp_path, small_counts):
    _write_mnist(str(tmp_path), np.random.default_rng(0))
    path = tmp_path / formats.MNIST_FILES["test"][1]
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="implies 608 bytes, received 609"):
        data.load("mnist", "test", data_dir=str(tmp_path), source="files")


def test_svhn_mat_shapes_are_checked(tmp_path, small_counts):
    from scipy import io as scipy_io

    for split in ("train", "test"):
        scipy_io.savemat(
            os.path.join(tmp_path, formats.SVHN_FILES[split]),
            {
                "X": np.zeros((32, 32, 3, 599), np.uint8),
                "y": np.ones((599, 1), np.uint8),
            },
        )
    with pytest.raises(
        ValueError, match=r"test_32x32.mat.*\(32, 32, 3, 599\).*600\)"
    ):
        data.load("svhn", "test", data_dir=str(tmp_path), source="files")
