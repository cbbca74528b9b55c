"""`textpipe export`: a SavedModel that TensorFlow alone serves with the bundle's own predictions."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textpipe.bundle import Bundle, end_to_end, load_bundle, save_bundle
from textpipe.cli import main

FORMAT1 = Path(__file__).parent / "data" / "format1"
TEXTS = ["a wonderful film", "the plot was dull and the acting awful", "", "great " * 300, "ünïcode ☃ text"]

# Run in a fresh interpreter outside the repository: TensorFlow may load its own Keras when it is imported,
# but after that no further Keras module and nothing of textpipe may be imported to load and run the model.
LOADER = """
import importlib.abc, json, sys
blocked = {"textpipe"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError("imported " + name)
sys.meta_path.insert(0, Block())
import tensorflow as tf
blocked |= {"keras", "tf_keras"}
texts = json.loads(sys.argv[1])
results = {}
for folder in sys.argv[2:]:
    serve = tf.saved_model.load(folder).signatures["serving_default"]
    out = serve(text=tf.constant(texts))
    results[folder] = {"probabilities": out["probabilities"].numpy().tolist(),
                       "label": [label.decode() for label in out["label"].numpy()]}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def three_class_bundle(tiny_data, tmp_path_factory):
    # Untrained: the export must reproduce whatever the model computes, softmax head and max pooling included.
    from conftest import TINY_SETTINGS
    from textpipe.config import Config
    from textpipe.models import build_model
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer

    config = Config(**TINY_SETTINGS, lstm_pooling="max")
    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, tiny_data.train.texts)
    model = end_to_end(vectorizer, build_model(config, 3))
    bundle = Bundle(model, config, ("sad", "calm", "glad"), vectorizer.vocabulary_size())
    return save_bundle(bundle, tmp_path_factory.mktemp("three") / "bundle")


@pytest.fixture(scope="module")
def mixed_bundle(tiny_data, tmp_path_factory):
    # Untrained too, with random n-gram weights: the export must reproduce the mix of the two models.
    from conftest import TINY_SETTINGS
    from textpipe.config import Config
    from textpipe.layers import NgramLogits
    from textpipe.models import build_model, build_ngrams, mixed_classifier
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer

    config = Config(**TINY_SETTINGS, ngrams=True)
    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, tiny_data.train.texts)
    ngrams = build_ngrams(config, 3)
    table = next(layer for layer in ngrams.layers if isinstance(layer, NgramLogits)).table
    table.assign(np.random.default_rng(0).normal(scale=0.02, size=table.shape).astype("float32"))
    classifier = mixed_classifier(build_model(config, 3), ngrams, 0.4)
    bundle = Bundle(end_to_end(vectorizer, classifier), config, ("sad", "calm", "glad"), vectorizer.vocabulary_size(),
                    ngrams={"network_weight": 0.4})
    return save_bundle(bundle, tmp_path_factory.mktemp("mixed") / "bundle")


def export(bundle_dir, target, capsys):
    status = main(["export", str(bundle_dir), str(target)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"SavedModel written to {target}" in out
    return target


def serve_in_fresh_process(folders, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(TEXTS), *map(str, folders)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_exported_models_serve_the_bundles_predictions_without_textpipe(saved_bundle, three_class_bundle, mixed_bundle,
                                                                        tmp_path, capsys):
    bundles = {"lstm": saved_bundle, "softmax max-pooled": three_class_bundle, "conv1d format 1": FORMAT1 / "conv1d",
               "softmax mixed with n-grams": mixed_bundle}
    exported = {name: export(path, tmp_path / "serving" / name.replace(" ", "-") / "1", capsys)
                for name, path in bundles.items()}
    served = serve_in_fresh_process(exported.values(), tmp_path)
    for name, path in bundles.items():
        bundle = load_bundle(path)
        result = served[str(exported[name])]
        expected = bundle.predict_proba(TEXTS)
        assert np.asarray(result["probabilities"]).shape == (len(TEXTS), len(bundle.class_names))
        np.testing.assert_allclose(result["probabilities"], expected, atol=1e-6, err_msg=name)
        assert result["label"] == [bundle.class_names[i] for i in expected.argmax(axis=1)], name


def test_saved_model_cli_describes_the_signature(saved_bundle, tmp_path, capsys):
    target = export(saved_bundle, tmp_path / "model" / "1", capsys)
    command = shutil.which("saved_model_cli")
    if command is None:  # installed with TensorFlow; the module runs it just the same
        command = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    else:
        command = [command]
    done = subprocess.run(
        [*command, "show", "--dir", str(target), "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "inputs['text'] tensor_info:\n      dtype: DT_STRING\n      shape: (-1)" in done.stdout
    assert "outputs['probabilities'] tensor_info:\n      dtype: DT_FLOAT\n      shape: (-1, 2)" in done.stdout
    assert "outputs['label'] tensor_info:\n      dtype: DT_STRING\n      shape: (-1)" in done.stdout


def test_export_replaces_an_export_and_refuses_anything_else(saved_bundle, tmp_path, capsys):
    target = export(saved_bundle, tmp_path / "model" / "1", capsys)
    export(saved_bundle, target, capsys)  # again, over the first export
    assert (target / "saved_model.pb").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["1"]  # nothing left beside it

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    for argv, message in [
        ([saved_bundle, precious], "is not an exported model; refusing to overwrite it"),
        ([tmp_path / "no-bundle", tmp_path / "out"], "no model bundle at"),
        ([saved_bundle, precious / "notes.txt" / "1"], "notes.txt is not a folder"),
    ]:
        status = main(["export", *map(str, argv)])
        err = capsys.readouterr().err
        assert status == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert (precious / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "out").exists()
