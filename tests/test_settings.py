import pytest

from publieksdata.settings import PublieksdataError, intake_workers, k_threshold


def test_k_defaults_to_ten(monkeypatch):
    monkeypatch.delenv("PUBLIEKSDATA_K", raising=False)
    assert k_threshold() == 10


def test_k_below_five_is_refused(monkeypatch):
    monkeypatch.setenv("PUBLIEKSDATA_K", "4")
    with pytest.raises(PublieksdataError, match="refused"):
        k_threshold()


def test_wrong_master_key_is_refused(home, monkeypatch):
    import base64

    from privacy.keyring import open_keyring

    monkeypatch.setenv("PUBLIEKSDATA_MASTER_KEY", base64.urlsafe_b64encode(b"\x02" * 32).decode())
    with pytest.raises(PublieksdataError, match="does not open"):
        open_keyring(home)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_intake_workers_must_be_a_positive_whole_number(monkeypatch, value):
    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", value)
    with pytest.raises(PublieksdataError, match="PUBLIEKSDATA_INTAKE_WORKERS"):
        intake_workers()


def test_intake_workers_default_to_the_cores_at_most_four(monkeypatch):
    monkeypatch.delenv("PUBLIEKSDATA_INTAKE_WORKERS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert intake_workers() == 4
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert intake_workers() == 1
    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", "2")
    assert intake_workers() == 2
