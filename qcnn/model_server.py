"""The two trained models in a process of their own, and the app's client for it.

Why a process: importing torch, torchvision and pytorch-grad-cam and loading the models is about 4 s of
work that holds Python's GIL. In the app's process it would stall the first page views for as long;
here it runs on the other core while the server starts, and a CAM running for one visitor (ScoreCAM:
seconds) never slows another visitor's page.

``start(directory, device)`` launches ``python -m qcnn.model_server`` and returns a ``RemotePredictor``
at once; the models load in the worker while the app serves pages. ``RemotePredictor.predict`` has
``qcnn.inference.Predictor.predict``'s signature and returns the same ``qcnn.prediction.Prediction``;
progress reports (ScoreCAM's batches) stream back during the call. The client side imports no torch.

Protocol: one ``multiprocessing.connection`` (authenticated, on a Unix socket or loopback) per request;
the worker answers each connection on its own thread. Requests are tuples:

- ``("wait",)`` -> ``("ok", info)`` once the models are loaded;
- ``("predict", image, cam_method)`` -> any number of ``("progress", fraction, text)``, then
  ``("ok", prediction)``;
- ``("circuit",)`` -> ``("ok", (text, png))``;
- ``("draws", patch_distributions, shots)`` -> ``("ok", draws)``.

A failure is ``("failed", message)`` (the models cannot be loaded: the message says what to run),
``("error", message)`` (a bad request) or ``("bug", message)`` (its traceback goes to the worker's
stderr, the app's log). The worker exits when the app's process ends (its stdin closes).
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from qcnn.inference import Predictor
    from qcnn.prediction import Prediction

AUTHKEY_ENV = "QCNN_MODEL_SERVER_KEY"  # the connection's shared secret, handed to the worker privately
READY_TIMEOUT_S = 600.0  # loading on a slow, busy machine; a dead worker is noticed at once (EOF)
Progress = Callable[[float, str], None]


class ModelServerError(RuntimeError):
    """The worker could not load the models (its message says what to run) or could not be reached."""


@dataclass(frozen=True)
class ModelInfo:
    """What the app shows about the loaded models besides predictions."""

    ood_note: str  # why there is no out-of-distribution check ("" when there is one)
    readout_weights: np.ndarray  # (256,) the QCNN classifier's weights over the outcome probabilities
    readout_bias: float
    qcnn_digest: str  # sha256 of the QCNN's trained circuit and readout: a cache key for what derives from them
    n_qubits: int
    reuploads: int
    n_layers: int


# --- the worker (its own process) -----------------------------------------------------------------


def _info(predictor: Predictor) -> ModelInfo:
    import hashlib

    head = predictor.models["qcnn"].head
    layer, classifier = head.outcome_map, head.classifier
    readout = classifier.weight.detach().double().cpu().numpy()[0]
    trained = (layer.weights.detach().cpu().numpy(), readout, classifier.bias.detach().double().cpu().numpy())
    return ModelInfo(
        ood_note=predictor.ood_note,
        readout_weights=readout,
        readout_bias=float(classifier.bias),
        qcnn_digest=hashlib.sha256(b"".join(w.tobytes() for w in trained)).hexdigest(),
        n_qubits=layer.n_qubits,
        reuploads=layer.reuploads,
        n_layers=layer.n_layers,
    )


def _circuit(predictor: Predictor) -> tuple[str, bytes | None]:
    """The trained circuit as text and as a PNG (matplotlib; None where drawing fails)."""
    layer = predictor.models["qcnn"].head.outcome_map
    text, png = layer.draw_text(), None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = layer.draw_figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        png = buffer.getvalue()
    except Exception:  # noqa: BLE001 - the text drawing is enough when matplotlib fails
        png = None
    return text, png


def _load(directory: str, device: str) -> Predictor:
    """The predictor, or ModelServerError with what to run (the message the app shows)."""
    try:
        from qcnn.inference import Predictor

        predictor = Predictor.from_checkpoints(Path(directory), device)
        predictor.warm_up()  # the first visitor should not pay for first-call allocations
        import qcnn.shots  # noqa: F401  (Try it's finite-shot spread follows every first prediction)

        return predictor
    except Exception as err:  # noqa: BLE001 - whatever the files hold (safetensors' own errors too): unusable
        raise ModelServerError(
            f"The checkpoints in `{directory}` could not be loaded ({err}). Run `qcnn reproduce` to "
            "train and export both models again."
        ) from err


def _answer(connection: Connection, loaded: Future) -> None:
    """One request on one connection."""
    with connection:
        try:
            request = connection.recv()
            try:
                predictor = loaded.result()
            except ModelServerError as err:
                connection.send(("failed", str(err)))
                return
            if request[0] == "wait":
                connection.send(("ok", _info(predictor)))
            elif request[0] == "predict":
                _, image, cam_method = request
                report = lambda fraction, text: connection.send(("progress", fraction, text))  # noqa: E731
                connection.send(("ok", predictor.predict(image, cam_method=cam_method, progress=report)))
            elif request[0] == "circuit":
                connection.send(("ok", _circuit(predictor)))
            elif request[0] == "draws":
                from qcnn.shots import image_probability_draws

                _, patch_distributions, shots = request
                info = _info(predictor)
                draws = image_probability_draws(patch_distributions, info.readout_weights, info.readout_bias, shots)
                connection.send(("ok", draws))
            else:
                connection.send(("error", f"unknown request {request[0]!r}"))
        except (ValueError, TypeError) as err:  # a bad image or CAM name: the caller's mistake, said plainly
            connection.send(("error", str(err)))
        except (EOFError, BrokenPipeError, ConnectionResetError):
            pass  # the app gave up on this request (a closed tab)
        except Exception as err:  # noqa: BLE001 - a bug: its traceback on our stderr (the app's), the app told
            traceback.print_exc()
            connection.send(("bug", f"{type(err).__name__}: {err}"))


def serve(address: str, directory: str, device: str, authkey: bytes) -> None:
    """Accept requests at once; answer them when the models have loaded (or say why they could not)."""
    listener = Listener(_endpoint(address), authkey=authkey)
    loaded: Future = Future()

    def load() -> None:
        start = time.perf_counter()
        try:
            loaded.set_result(_load(directory, device))
        except ModelServerError as err:
            loaded.set_exception(err)
        took = f"{time.perf_counter() - start:.1f} s after the process started listening"
        print(f"qcnn.model_server: {'failed' if loaded.exception() else 'models ready'}, {took}", file=sys.stderr)

    def exit_with_parent() -> None:
        sys.stdin.buffer.read()  # returns when the app's process closes our stdin (it ended)
        if os.path.sep in address:
            shutil.rmtree(os.path.dirname(address), ignore_errors=True)  # the socket's private folder
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    threading.Thread(target=load, daemon=True).start()
    print("ready", flush=True)  # the socket is listening
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads our stdout from now on: never fill it
    while True:
        try:
            connection = listener.accept()
        except (OSError, EOFError):  # a client that failed authentication or hung up at once
            continue
        threading.Thread(target=_answer, args=(connection, loaded), daemon=True).start()


# --- the client (the app's process) ---------------------------------------------------------------


class RemotePredictor:
    """The app's handle on one worker: ``predict`` as ``qcnn.inference.Predictor``'s, plus ``info``."""

    def __init__(self, process: subprocess.Popen, address: str, authkey: bytes) -> None:
        self._process, self._address, self._authkey = process, address, authkey
        self._info: ModelInfo | None = None

    def _request(self, request: tuple, progress: Progress | None = None) -> Any:
        if self._process.poll() is not None:
            raise ModelServerError(f"the model process has stopped (exit code {self._process.returncode})")
        try:
            with Client(_endpoint(self._address), authkey=self._authkey) as connection:
                connection.send(request)
                while True:
                    kind, *payload = connection.recv()
                    if kind == "progress":
                        if progress is not None:
                            progress(*payload)
                        continue
                    break
        except (OSError, EOFError) as err:
            raise ModelServerError(f"the model process did not answer ({err})") from err
        if kind == "ok":
            return payload[0]
        if kind == "failed":
            raise ModelServerError(payload[0])
        if kind == "bug":
            raise RuntimeError(f"the model process failed: {payload[0]} (traceback in the server's log)")
        raise ValueError(payload[0])

    def wait(self) -> ModelInfo:
        """Block until the models are loaded; their ``ModelInfo``. Raises ModelServerError if they cannot be."""
        if self._info is None:
            self._info = self._request(("wait",))
        return self._info

    @property
    def info(self) -> ModelInfo:
        return self.wait()

    @property
    def ood_note(self) -> str:
        return self.info.ood_note

    def predict(self, image: Image.Image, cam_method: str = "GradCAM", progress: Progress | None = None) -> Prediction:
        """``qcnn.inference.Predictor.predict``, run in the worker."""
        return self._request(("predict", image, cam_method), progress)

    def probability_draws(self, patch_distributions: np.ndarray, shots: int) -> np.ndarray:
        """``qcnn.shots.image_probability_draws`` of one image's QCNN patch distributions (seeded)."""
        return self._request(("draws", patch_distributions, shots))

    def circuit(self) -> tuple[str, bytes | None]:
        """The trained circuit drawn by PennyLane: text, and a PNG where matplotlib could draw it."""
        return self._request(("circuit",))

    def close(self) -> None:
        """Stop the worker (when newer checkpoints replace these models): it exits when its stdin closes."""
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self._process.kill()


def start(directory: str | Path, device: str = "cpu") -> RemotePredictor:
    """Launch a worker for the checkpoints in ``directory``; returns once it listens (well under 1 s)."""
    authkey = secrets.token_bytes(32)
    address = _free_address()
    process = subprocess.Popen(
        [sys.executable, "-m", "qcnn.model_server", address, str(directory), device],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, AUTHKEY_ENV: authkey.hex()},
    )
    line = process.stdout.readline()  # "ready" once listening; nothing if it died first
    if line.strip() != b"ready":
        process.kill()
        raise ModelServerError(f"the model process did not start (exit code {process.wait()})")
    return RemotePredictor(process, address, authkey)


def _free_address() -> str:
    """A Unix socket in a fresh private folder; loopback TCP where there are no Unix sockets (Windows)."""
    if hasattr(socket, "AF_UNIX"):
        return os.path.join(tempfile.mkdtemp(prefix="qcnn-models-"), "socket")
    with socket.socket() as s:  # pragma: no cover - Windows
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _endpoint(address: str) -> str | tuple[str, int]:
    """``_free_address``'s text as ``multiprocessing.connection`` takes it: a path, or (host, port)."""
    if hasattr(socket, "AF_UNIX"):
        return address
    host, port = address.rsplit(":", 1)  # pragma: no cover - Windows
    return host, int(port)  # pragma: no cover


if __name__ == "__main__":
    from qcnn import model_server  # what is pickled to the app must be qcnn.model_server's, not __main__'s

    _address, _directory, _device = sys.argv[1:]
    model_server.serve(_address, _directory, _device, bytes.fromhex(os.environ.pop(AUTHKEY_ENV)))
