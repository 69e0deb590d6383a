"""A KerasTuner script ported to hpstore by its import line, on MNIST-like data made up on
the spot (8x8 "digits": ten noisy prototypes), so it trains in seconds on a CPU.

    KERAS_BACKEND=torch python examples/keras_mnist_like.py runs

Start it in several terminals (or `... & ... &`) and the processes share the search:
each takes its own trials from runs/digits.db, and a Hyperband trial continues from the
checkpoint another process wrote in runs/digits/. On a machine with GPUs, one process per
GPU:

    CUDA_VISIBLE_DEVICES=0 python examples/keras_mnist_like.py runs &
    CUDA_VISIBLE_DEVICES=1 python examples/keras_mnist_like.py runs &

Run it again after Ctrl-C (or a crash) and it goes on where the search stopped; a
finished search runs nothing and shows its results.
"""

import sys

import keras
import numpy as np

import hpstore.keras as kt  # was: import keras_tuner as kt


def digits(samples, seed):
    """Ten classes of 8x8 images: a random prototype per class, plus noise."""
    prototypes = np.random.default_rng(0).uniform(0, 1, size=(10, 8, 8))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=samples)
    images = prototypes[labels] + rng.normal(0, 0.6, size=(samples, 8, 8))
    return images.astype("float32"), labels


def build_model(hp):
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten()])
    for i in range(hp.Int("layers", 1, 2)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 64, step=16), activation="relu"))
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(hp.Float("rate", 0.1, 0.5, step=0.2)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(directory="runs", max_epochs=6):
    x_train, y_train = digits(1000, seed=1)
    x_val, y_val = digits(200, seed=2)
    tuner = kt.Hyperband(build_model, objective="val_accuracy", max_epochs=max_epochs,
                         factor=3, seed=1, directory=directory, project_name="digits")
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), verbose=0,
                 callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=2)])
    tuner.results_summary(3)
    best = tuner.get_best_models(1)[0]
    accuracy = best.evaluate(x_val, y_val, verbose=0, return_dict=True)["accuracy"]
    print(f"Best model: val_accuracy {accuracy:.3f}, search file {tuner.search_file}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["runs"]), *map(int, sys.argv[2:3]))
