"""The shared sample dataset fixture opens as a valid dataset."""


def test_sample_dataset_opens(sample_dataset):
    from synthmed.data import Dataset

    data = Dataset.open(sample_dataset)
    assert data.classes[0] == "NonDemented"
    assert {r["split"] for r in data.rows} == {"train", "val", "test"}
