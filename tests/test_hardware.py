"""The quantum layer as hardware would run it: shots, gate noise, the Fourier spectrum, and their page."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from qcnn import fourier, noise, paths, shots
from qcnn.io import write_json
from qcnn.quantum import QuantumLayer, simulate

APP = paths.REPO_ROOT / "streamlit_app.py"


def quiet(_: str) -> None:
    pass


def random_distributions(m: int, k: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(k, 0.5), size=m)


# --- shots --------------------------------------------------------------------------------------


def test_multinomial_estimates_converge_to_the_exact_probabilities():
    p = random_distributions(40)
    errors = []
    for s in (10, 1_000, 100_000):
        counts = shots.sample_counts(p, s, np.random.default_rng(s))
        assert counts.dtype.kind == "i" and (counts >= 0).all() and (counts.sum(1) == s).all()
        errors.append(np.abs(counts / s - p).max())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 5 * np.sqrt(p.max() / 100_000)  # the multinomial's standard error, with margin


@pytest.mark.parametrize("s", [3, 1_000])  # the inverse-CDF branch (fewer shots than outcomes) and the binomial one
def test_both_sampling_branches_are_unbiased_and_reproducible(s):
    p = random_distributions(1, k=8)[0:1].repeat(20_000, 0)
    a = shots.estimate_probabilities(p, s, np.random.default_rng(1))
    b = shots.estimate_probabilities(p, s, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    se = np.sqrt(p[0] * (1 - p[0]) / (s * len(p)))
    assert np.all(np.abs(a.mean(0) - p[0]) < 5 * se + 1e-12)
    # the variance of one estimate is p(1-p)/S: the estimates are multinomial, not just unbiased
    np.testing.assert_allclose(a.var(0), p[0] * (1 - p[0]) / s, rtol=0.1)


def test_shot_logits_use_the_model_head_unchanged():
    probs = random_distributions(3 * 5).reshape(3, 5, 256)
    readout, bias = np.random.default_rng(2).normal(size=256), 0.3
    logits = shots.shot_logits(probs, readout, bias, 50, np.random.default_rng(7))
    estimate = shots.estimate_probabilities(probs.reshape(-1, 256), 50, np.random.default_rng(7)).reshape(3, 5, 256)
    np.testing.assert_allclose(logits, shots.exact_logits(estimate, readout, bias))
    many = shots.shot_logits(probs, readout, bias, 10**7, np.random.default_rng(0))
    sd = 256 * readout.std() / np.sqrt(10**7 * 5)  # of the patch mean of readout . estimate
    np.testing.assert_allclose(many, shots.exact_logits(probs, readout, bias), atol=5 * sd)


def test_one_draw_interval_is_the_main_evaluations_lesion_bootstrap():
    from qcnn.metrics import METRICS
    from qcnn.stats import interval, lesion_bootstrap

    rng = np.random.default_rng(4)
    labels, lesions = rng.integers(0, 2, 120), rng.integers(0, 70, 120).astype(str)
    probs = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 120), 0, 1)
    block = shots._metrics_block(labels, lesions, probs[None], 200, seed=3)
    expected = interval(lesion_bootstrap(labels, lesions, probs[None], 200, 3)[:, 0])
    for j, m in enumerate(METRICS):
        if m in block:
            np.testing.assert_allclose(block[m]["ci95_draws_and_lesions"], expected[j], atol=1e-6)


def test_parameter_shift_count_of_this_circuit():
    counts = shots.parameter_shift_circuits(n_weights=96, n_angles=8, uploads=2)
    assert counts["per_patch"] == 1 + 2 * 96 + 2 * 2 * 8 == 225
    budget = shots.shot_budget(100, n_test=4159, n_train=1269, n_weights=96, uploads=2)
    assert budget["per_image"] == 19_600 and budget["test_pool"] == 4159 * 19_600
    assert budget["training_epoch"] == 1269 * 196 * 225 * 100


def test_try_it_panel_spread_shrinks_with_shots():
    from qcnn.app.shots_panel import N_DRAWS, resampled_probabilities

    patches = random_distributions(196, seed=6)
    readout, bias = np.random.default_rng(6).normal(size=256) * 0.05, 0.2
    exact = shots.sigmoid(shots.exact_logits(patches[None], readout, bias))[0]
    spreads = []
    for s in (10, 1_000):
        draws = resampled_probabilities(patches, readout, bias, s)
        assert draws.shape == (N_DRAWS,)
        np.testing.assert_array_equal(draws, resampled_probabilities(patches, readout, bias, s))  # seeded
        spreads.append(draws.std())
        assert abs(draws.mean() - exact) < 4 * draws.std() / np.sqrt(N_DRAWS) + 1e-9
    assert spreads[1] < spreads[0] / 3  # shot noise falls as 1 / sqrt(S)


# --- noise --------------------------------------------------------------------------------------


def default_mixed_probs(angles: np.ndarray, weights: np.ndarray, p: float, flip: float) -> np.ndarray:
    """The same noisy circuit in PennyLane's default.mixed, gate by gate."""
    import pennylane as qml

    reuploads, layers, n, _ = weights.shape
    dev = qml.device("default.mixed", wires=n)

    @qml.qnode(dev)
    def circuit(x):
        for b in range(reuploads):
            for w in range(n):
                qml.RY(x[w], wires=w)
                qml.DepolarizingChannel(p, wires=w)
            for layer in range(layers):
                for w in range(n):
                    qml.Rot(*weights[b, layer, w], wires=w)
                    qml.DepolarizingChannel(p, wires=w)
                r = layer % (n - 1) + 1
                for w in range(n):
                    qml.CNOT(wires=[w, (w + r) % n])
                    qml.DepolarizingChannel(p, wires=w)
                    qml.DepolarizingChannel(p, wires=(w + r) % n)
        for w in range(n):
            qml.BitFlip(flip, wires=w)
        return qml.probs(wires=range(n))

    return np.stack([np.asarray(circuit(x)) for x in angles])


@pytest.mark.parametrize("reuploads,layers,n", [(2, 2, 3), (1, 2, 3), (3, 1, 2), (2, 3, 4)])
def test_noisy_simulation_equals_default_mixed(reuploads, layers, n):
    g = torch.Generator().manual_seed(reuploads * 10 + layers)
    weights = torch.rand(reuploads, layers, n, 3, generator=g, dtype=torch.float64) * 2 * np.pi
    angles = (torch.rand(3, n, generator=g, dtype=torch.float64) - 0.5) * 2 * np.pi
    p, flip = 0.03, 0.02
    expected = default_mixed_probs(angles.numpy(), weights.numpy(), p, flip)
    diagonals = noise.readout_weights(torch.eye(2**n, dtype=torch.float64), flip, flip)
    got = noise.noisy_expectations(angles, weights, p, diagonals).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_asymmetric_readout_error_is_a_per_qubit_confusion_matrix():
    probs = torch.tensor(random_distributions(1, 4, seed=3)[0])
    e01, e10 = 0.01, 0.05
    m = np.array([[1 - e01, e10], [e01, 1 - e10]])  # [read, true]
    measured = np.kron(m, m) @ probs.numpy()
    folded = noise.readout_weights(torch.eye(4, dtype=torch.float64), e01, e10) @ probs
    np.testing.assert_allclose(folded.numpy(), measured, atol=1e-15)


def test_noisy_simulation_at_p0_equals_the_exact_circuit():
    layer = QuantumLayer(8, 2, 2)
    angles = (torch.rand(16, 8, dtype=torch.float64) - 0.5) * 2 * np.pi
    weights = layer.weights.detach().double()
    np.testing.assert_allclose(
        noise.noisy_probabilities(angles, weights, 0.0).numpy(), simulate(angles, weights).numpy(), atol=1e-12
    )
    noisy = noise.noisy_probabilities(angles, weights, 0.05).numpy()
    assert np.abs(noisy - simulate(angles, weights).numpy()).max() > 1e-3  # and noise changes it
    np.testing.assert_allclose(noisy.sum(1), 1, atol=1e-12)


# --- Fourier ------------------------------------------------------------------------------------


def check_spectrum(layer: QuantumLayer, readout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    freqs, coeffs = fourier.circuit_spectrum(layer, readout)
    assert freqs.shape == ((2 * layer.reuploads + 1) ** layer.n_qubits, layer.n_qubits)
    assert np.abs(freqs).max() <= layer.reuploads
    x = np.random.default_rng(5).uniform(-2 * np.pi, 2 * np.pi, (40, layer.n_qubits))
    direct = simulate(torch.from_numpy(x), layer.weights.detach().double()).numpy() @ readout
    np.testing.assert_allclose(fourier.evaluate_spectrum(freqs, coeffs, x), direct, atol=1e-6, rtol=0)
    return freqs, coeffs


@pytest.mark.parametrize("reuploads", [1, 2])
def test_spectrum_reconstructs_a_random_circuit(reuploads):
    torch.manual_seed(reuploads)
    layer = QuantumLayer(4, 2, reuploads)
    readout = np.random.default_rng(0).normal(size=16)
    freqs, coeffs = check_spectrum(layer, readout)
    big = np.abs(coeffs) > 1e-9
    assert np.abs(freqs[big]).max() == reuploads  # the highest frequency is reached: L uploads, frequencies -L..L
    summary = fourier.summarize_spectrum(freqs, coeffs)
    assert summary["variance_share_up_to_order"][-1] == pytest.approx(1.0)
    assert summary["variance"] == pytest.approx(
        float(
            np.var(
                fourier.evaluate_spectrum(freqs, coeffs, np.random.default_rng(1).uniform(0, 2 * np.pi, (20_000, 4)))
            )
        ),
        rel=0.05,
    )


def test_the_surrogates_reach_is_its_best_least_squares_fit():
    """The variance share the surrogate can capture equals a least-squares fit of its features on the exact grid."""
    torch.manual_seed(3)
    layer = QuantumLayer(3, 2, 2)
    readout = np.random.default_rng(0).normal(size=8)
    surrogate = np.random.default_rng(1).integers(-2, 3, (5, 3))
    surrogate[1] = -surrogate[0]  # a +-w pair and a zero vector must not be counted twice
    surrogate[2] = 0
    freqs, coeffs = fourier.circuit_spectrum(layer, readout)
    reach = fourier.surrogate_reach(surrogate, {"trained": (freqs, coeffs)})

    grid = np.stack(np.meshgrid(*[2 * np.pi * np.arange(5) / 5] * 3, indexing="ij"), -1).reshape(-1, 3)
    target = simulate(torch.from_numpy(grid), layer.weights.detach().double(), layer.entangling).numpy() @ readout
    phases = grid @ surrogate.T
    features = np.hstack([np.ones((len(grid), 1)), np.cos(phases), np.sin(phases)])
    fit, *_ = np.linalg.lstsq(features, target, rcond=None)
    explained = 1 - np.var(target - features @ fit) / np.var(target)
    assert reach["trained_variance_captured"] == pytest.approx(explained, abs=1e-9)
    assert reach["distinct_nonzero_frequencies"] == len(
        {tuple(w) for w in np.vstack([surrogate, -surrogate])} - {(0, 0, 0)}
    )


@pytest.mark.skipif(not (paths.CHECKPOINT_DIR / "qcnn.safetensors").is_file(), reason="no trained QCNN")
def test_spectrum_reconstructs_the_trained_circuit():
    from qcnn.models import load_model

    model = load_model("qcnn", paths.CHECKPOINT_DIR)
    readout = 256 * model.head.classifier.weight.detach().double().numpy()[0]
    freqs, coeffs = check_spectrum(model.head.outcome_map, readout)
    committed = paths.RESULTS_DIR / fourier.FOURIER_FILE
    if committed.is_file():
        share = json.loads(committed.read_text())["trained"]["variance_share_up_to_order"]
        assert fourier.summarize_spectrum(freqs, coeffs)["variance_share_up_to_order"] == pytest.approx(share)


# --- the page -----------------------------------------------------------------------------------


def synthetic_model() -> tuple[QuantumLayer, shots.PatchDistributions]:
    """A small random circuit read out linearly, with labels it can partly predict."""
    rng = np.random.default_rng(0)
    n, patches, qubits = 40, 3, 3
    layer = QuantumLayer(qubits, 2, 2)
    angles = rng.uniform(-np.pi, np.pi, (n, patches, qubits)).astype(np.float32)
    probs = layer(torch.from_numpy(angles)).detach().numpy()
    readout = rng.normal(size=2**qubits) * 20
    labels = (probs @ readout).mean(1) + rng.normal(scale=0.5, size=n) > np.median((probs @ readout).mean(1))
    test = pd.DataFrame(
        {
            "image_id": [f"ISIC_{i:07d}" for i in range(n)],
            "lesion_id": [f"L{i // 2}" for i in range(n)],
            "label": labels.astype(int),
        }
    )
    dists = shots.PatchDistributions(
        probs=probs,
        angles=angles,
        readout=readout,
        bias=-float((probs @ readout).mean()),
        test=test,
        weights=layer.weights.detach().numpy(),
    )
    return layer, dists


def test_an_interrupted_shots_run_keeps_its_finished_shot_counts():
    _, dists = synthetic_model()
    settings = dict(n_train=100, n_draws=3, n_bootstrap=50, log=lambda *_: None)
    whole = shots.shots_experiment(dists, shot_counts=(1, 10, 100), **settings)
    interrupted = json.loads(json.dumps(shots.shots_experiment(dists, shot_counts=(1, 10), **settings)))
    interrupted["entries"][1]["seconds"] = -1.0  # marks the entry that must be kept, not sampled again
    resumed = shots.shots_experiment(dists, shot_counts=(1, 10, 100), previous=interrupted, **settings)
    assert resumed["entries"][1]["seconds"] == -1.0 and resumed["complete"]
    for kept, fresh in zip(resumed["entries"][2:], whole["entries"][2:], strict=True):
        assert kept["metrics"] == fresh["metrics"]
    other = shots.shots_experiment(dists, shot_counts=(1,), previous={**interrupted, "n_draws": 5}, **settings)
    assert other["entries"][1]["seconds"] != -1.0, "a payload with other settings is not reused"


@pytest.fixture(scope="module")
def hardware_results(tmp_path_factory):
    """shots.json, noise.json and fourier.json made by the real functions from a small synthetic model."""
    folder = tmp_path_factory.mktemp("results")
    layer, dists = synthetic_model()
    readout = dists.readout
    write_json(
        folder / shots.SHOTS_FILE,
        {
            k: v
            for k, v in shots.shots_experiment(
                dists, n_train=100, shot_counts=(1, 10, 100), n_draws=3, n_bootstrap=50, log=quiet
            ).items()
            if k != "exact_probabilities"
        },
    )
    write_json(
        folder / noise.NOISE_FILE,
        noise.noise_experiment(dists, gate_errors=(0.0, 1e-2, 1e-1), n_bootstrap=50, log=quiet),
    )
    surrogate = np.random.default_rng(2).integers(-2, 3, (6, layer.n_qubits))
    write_json(folder / fourier.FOURIER_FILE, fourier.fourier_report(layer, readout, surrogate, log=quiet))
    return folder


def open_hardware_page(results_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(results_dir))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("pages/hardware.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_hardware_page_shows_shots_noise_budget_and_spectrum(hardware_results, monkeypatch):
    from qcnn.app.page_hardware import TITLE

    at = open_hardware_page(hardware_results, monkeypatch)
    assert [t.value for t in at.title] == [TITLE]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 8  # 3 metrics vs shots, 3 vs noise, 2 spectrum charts
    saved = json.loads((hardware_results / shots.SHOTS_FILE).read_text())
    exact_auc = next(e for e in saved["entries"] if e["shots"] is None)["metrics"]["auc"]["mean"]
    assert any(s.get("y0") == exact_auc for s in charts[0]["layout"].get("shapes", []))  # the exact line
    budget = next(d.value for d in at.dataframe if "time, test pool" in d.value.columns)
    assert list(budget["shots per image"]) == [f"{196 * s:,}" for s in (1, 10, 100)]
    rate = at.number_input(key="hardware_rate")
    assert rate.value == 1_000.0
    rate.set_value(196.0).run()
    budget = next(d.value for d in at.dataframe if "time, test pool" in d.value.columns)
    assert budget["time per image"].iloc[0] == "1.0 s"  # 196 shots at 196 shots per second
    saved_noise = json.loads((hardware_results / noise.NOISE_FILE).read_text())
    assert saved_noise["complete"] and saved_noise["p0_check"]["max_abs_difference_to_statevector"] < 1e-5
    assert not at.warning  # every file complete
    text = "\n".join(m.value for m in at.markdown)
    assert "depolarizing" in text and f"**{saved['parameter_shift']['per_patch']} circuits**" in text
    reach = json.loads((hardware_results / fourier.FOURIER_FILE).read_text())["surrogate"]
    assert f"keeps **{100 * reach['trained_variance_captured']:.2f} %** of the trained circuit's" in text


def test_hardware_page_without_results_says_what_to_run(tmp_path, monkeypatch):
    at = open_hardware_page(tmp_path, monkeypatch)
    messages = "\n".join(i.value for i in at.info)
    for part in ("shots", "noise", "fourier"):
        assert f"qcnn hardware {part}" in messages


# --- the committed results ----------------------------------------------------------------------

COMMITTED_SHOTS = paths.RESULTS_DIR / shots.SHOTS_FILE


@pytest.mark.skipif(not COMMITTED_SHOTS.is_file(), reason="results/shots.json not made yet")
def test_committed_exact_entry_is_the_main_evaluation():
    """The exact row of shots.json scores the test pool as `qcnn evaluate` did.

    shots.json is float32; against a float32 evaluation the probabilities agree to 1e-5. Against the
    earlier bfloat16 evaluation they differ by up to 0.021 (mean 0.0008) on images near the threshold.
    """
    saved = json.loads(COMMITTED_SHOTS.read_text())
    evaluation = json.loads((paths.RESULTS_DIR / "runs" / "qcnn_seed0" / "metrics.json").read_text())
    check = saved["exact_vs_evaluation"]  # against the predictions.csv there was when shots.json was saved
    assert check["max_abs_difference"] <= (1e-5 if check.get("evaluation_precision") == "fp32" else 0.025)
    fp32 = evaluation.get("precision_policy") == "fp32"
    exact = next(e for e in saved["entries"] if e["shots"] is None)["metrics"]
    for metric in ("auc", "balanced_accuracy", "f1"):
        assert exact[metric]["mean"] == pytest.approx(evaluation[metric], abs=1e-5 if fp32 else 0.02)
