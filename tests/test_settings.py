import pytest

from publieksdata.settings import PublieksdataError, k_threshold


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
