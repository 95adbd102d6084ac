"""Pixels on their way to a model: 16-bit data held in a dtype every device can index."""

import numpy as np
import torch

from synthmed.batches import pixels_on_device, to_unit_float


def test_sixteen_bit_pixels_travel_as_int32_and_scale_like_uint16():
    stored = np.array([[[[0, 1, 65534, 65535]]]], dtype=np.uint16)
    on_device = pixels_on_device(stored, "cpu")
    assert on_device.dtype == torch.int32
    assert on_device[torch.tensor([0])].tolist() == stored.astype(np.int64).tolist()
    np.testing.assert_array_equal(to_unit_float(on_device).numpy(), to_unit_float(stored).numpy())


def test_eight_bit_pixels_stay_uint8():
    stored = np.arange(12, dtype=np.uint8).reshape(1, 1, 3, 4)
    on_device = pixels_on_device(stored, "cpu")
    assert on_device.dtype == torch.uint8
    np.testing.assert_array_equal(on_device.numpy(), stored)


def test_data_always_fits_on_the_cpu():
    from synthmed.devices import cuda_amp_dtype, holds_data

    assert holds_data("cpu", 10**15)
    assert cuda_amp_dtype("cpu") is None
