"""A bundle as a TensorFlow SavedModel, the format TensorFlow Serving (and any TensorFlow program) loads.

    DIR/
      saved_model.pb, variables/, assets/    signature "serving_default":
                                               text (batch,) tf.string -> probabilities (batch, n_classes) float32
                                                                          label (batch,) tf.string, the class name

The signature runs the bundle's own model, vectorizer included, so a served prediction is the bundle's
prediction; the two-column probabilities of a two-class (sigmoid) model are spelled out as `predict_proba`
does. Loading it needs TensorFlow only: not textpipe, not Keras. TensorFlow Serving wants a numbered version
folder under the model's folder: export to `serving/NAME/1`.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from textpipe.atomic import atomic_dir
from textpipe.bundle import Bundle
from textpipe.bundle_files import check_export_target

SIGNATURE = "serving_default"


def export_saved_model(bundle: Bundle, path: str | Path) -> Path:
    """Write `bundle` as a SavedModel to the folder `path`, atomically, replacing an earlier export there."""
    path = Path(path)
    check_export_target(path)
    model = bundle.model
    sigmoid = model.output_shape[-1] == 1  # a two-class model gives P(class 1) only
    class_names = tf.constant(list(bundle.class_names))

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = tf.cast(model(text, training=False), tf.float32)
        probabilities = tf.concat([1.0 - outputs, outputs], axis=-1) if sigmoid else outputs
        return {"probabilities": probabilities, "label": tf.gather(class_names, tf.argmax(probabilities, axis=-1))}

    archive = keras.export.ExportArchive()
    archive.track(model)  # its variables and the vectorizer's lookup table
    archive.add_endpoint(SIGNATURE, serve, input_signature=[tf.TensorSpec((None,), tf.string, name="text")])
    with atomic_dir(path) as staging:
        archive.write_out(str(staging), verbose=False)
    return path
