import ncp_policies


def test_version_is_a_string():
    assert isinstance(ncp_policies.__version__, str) and ncp_policies.__version__.count(".") == 2
