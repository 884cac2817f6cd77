"""The device choice and the precision policy: one place, clear errors, the same numbers on any device."""

from __future__ import annotations

import pytest
import torch

from qcnn.errors import ConfigError
from qcnn.quantum import QuantumLayer
from qcnn.runtime import autocast, full_precision, resolve_device, storage_dtype

HAS_CUDA = torch.cuda.is_available()


def test_auto_picks_the_best_device_present():
    expected = "cuda" if HAS_CUDA else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is present")
def test_asking_for_an_absent_gpu_says_so():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_unknown_devices_and_precisions_are_config_errors():
    with pytest.raises(ConfigError, match="device must be one of"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="fp32 or bf16"):
        autocast(torch.device("cpu"), "fp16")


def test_bf16_runs_the_backbone_in_bfloat16_and_the_head_in_float32():
    cpu = torch.device("cpu")
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8)
    with autocast(cpu, "bf16"):
        assert conv(x).dtype == torch.bfloat16
        with full_precision(cpu):
            assert conv(x).dtype == torch.float32
    with autocast(cpu, "fp32"):
        assert conv(x).dtype == torch.float32
    assert storage_dtype("bf16") == torch.bfloat16 and storage_dtype("fp32") == torch.float32


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_the_quantum_layer_gives_the_same_probabilities_and_gradients_on_the_gpu():
    torch.manual_seed(0)
    layer = QuantumLayer().double()
    angles = torch.rand(64, 8, dtype=torch.float64, requires_grad=True)
    probs = layer(angles)
    probs.square().sum().backward()
    gpu = QuantumLayer().double().cuda()
    gpu.load_state_dict(layer.state_dict())
    angles_gpu = angles.detach().cuda().requires_grad_()
    probs_gpu = gpu(angles_gpu)
    probs_gpu.square().sum().backward()
    torch.testing.assert_close(probs_gpu.cpu(), probs, rtol=0, atol=1e-10)
    torch.testing.assert_close(angles_gpu.grad.cpu(), angles.grad, rtol=1e-6, atol=1e-10)
    torch.testing.assert_close(gpu.weights.grad.cpu(), layer.weights.grad, rtol=1e-6, atol=1e-10)


def test_the_machine_record_names_the_cpu_and_its_vector_extensions(tmp_path):
    from qcnn import runtime

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    record = runtime.machine(torch.device("cpu"), cpuinfo)
    assert record["cpu"] == "AMD EPYC" and record["simd"] == ["avx2", "avx512f", "avx512_bf16"]
    assert record["torch_threads"] == torch.get_num_threads() and "gpu" not in record
